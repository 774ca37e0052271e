"""TransUNet's R50-ViT-B/16 hybrid encoder (Chen et al. 2021, "TransUNet: Transformers Make Strong
Encoders for Medical Image Segmentation"; ViT: Dosovitskiy et al. 2021), layer for layer as the
paper's code defines it (Beckschen/TransUNet, ``networks/vit_seg_modeling{,_resnet_skip}.py``), NHWC:

  root      StdConv 7×7/2 (pad 3, no bias) → GN(32) → ReLU                    → s_2 (stride 2, 64)
  pool      3×3/2 max pooling *without* padding (H/2 → H/4 − 1, the reference's)
  block1-3  3, 4, 9 bottleneck units, widths 256, 512, 1024, block2/3 stride 2  → s_4, s_8, then x_16
            (s_4 = block1's (H/4 − 1)-map padded with zeros at the bottom/right to H/4, as the
            reference pads its skip feature)
  unit      y = GN₃(conv₁ₓ₁(ReLU(GN₂(conv₃ₓ₃/s(ReLU(GN₁(conv₁ₓ₁(x))))))));  out = ReLU(y + S(x)),
            S = GN_proj(conv₁ₓ₁/s(x)) when stride or width change (the first unit), else identity
  StdConv   weight standardisation W ← (W − mean W) / sqrt(var W + 1e-5) over each output
            channel's (kh, kw, c_in), variance biased (the reference's torch.var_mean)
  GN        GroupNorm, 32 groups, ε = 1e-6; GN_proj has one group per channel and ε = 1e-5
            (the reference's ``nn.GroupNorm(cout, cout)``)
  embedding 1×1 convolution (patch size 1 on the CNN grid) 1024 → D = 768, with bias
  z₀        tokens + p, p a learned (h, w, D) grid (h, w = H/16, W/16), dropout
  z_l       pre-LN ViT layer: z' = z + MSA(LN(z)), z'' = z' + W₂ drop(GELU(W₁ LN(z'))), 12 heads,
            MLP 3072, exact (erf) GELU, LN ε = 1e-6; L = 12 layers; final LN "encoder_norm"

``R50ViT.__call__(x, train)`` returns [s_2, s_4, s_8, z] with z = LN(z_L) as an (N, H/16, W/16, 768)
map. H and W must be divisible by 16. Module names are the key names of Google's released
``R50+ViT-B_16.npz`` (the file TransUNet's ``load_from`` reads): conv_root, gn_root,
block<i>/unit<j>/{conv1,gn1,conv2,gn2,conv3,gn3,conv_proj,gn_proj}, embedding,
Transformer/{posembed_input, encoderblock_<l>/{LayerNorm_0, MultiHeadDotProductAttention_1/
{query,key,value,out}, LayerNorm_2, MlpBlock_3/Dense_{0,1}}, encoder_norm}; every leaf has the
file's layout (flax's MultiHeadDotProductAttention keeps (D, heads, D/heads) kernels, as the file).

Position embedding: the parameter is the grid seen at ``init``; another input size resizes it with
align-corners linear interpolation (``resize_linear``), the rule of the reference's loader
(``scipy.ndimage.zoom(order=1)``), which ``load_weights`` also applies to the checkpoint's 14×14
grid (its class-token row dropped).

Weights (``load_weights``): the paper's ``.npz`` (``np.load(allow_pickle=False)``; keys may carry
the ``opt/target/`` prefix of training checkpoints; cls, head/*, pre_logits/* are ignored; a
GroupNorm/LayerNorm vector stored as (1, 1, 1, C) is accepted, as timm's npz reader does) or timm's
``vit_base_r50_s16_224`` state dict (``.safetensors``/``.pth``: patch_embed.backbone.stem/stages…,
patch_embed.proj, pos_embed, blocks.<l>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2},
norm), translated to the npz layout first. Note that timm's network pads its convolutions
TF-"SAME" and uses GN ε = 1e-5 everywhere; its weights (converted from the same Google
checkpoints) load here into TransUNet's network. A 1-channel model gets the RGB root kernels summed
(``torch_weights.adapt_first_conv``, the rule of the other encoders); with weight standardisation
that is not the same function as the reference's repeating a gray image to RGB.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxseg.errors import DataError
from jaxseg.models.encoders.torch_weights import adapt_first_conv, mismatch_message, read_state_dict

NAME = "r50_vit_b16"
WIDTH, UNITS = 64, (3, 4, 9)
HIDDEN, LAYERS, HEADS, MLP = 768, 12, 12, 3072
STRIDE = 16
POS_KEY = "Transformer/posembed_input/pos_embedding"
FIRST_CONV = ("conv_root", "kernel")
KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
IGNORED = re.compile(r"^(cls|head/.*|pre_logits/.*)$")


def linear_coords(n_in: int, n_out: int):
    """Align-corners linear interpolation from n_in to n_out samples: (i0, i1, w) with
    out[i] = (1 − w) in[i0] + w in[i1], source position i · (n_in − 1) / (n_out − 1)."""
    src = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def resize_linear(x, size, axes=(1, 2)):
    """``x`` resized along ``axes`` to ``size`` by align-corners linear interpolation (torch's
    ``UpsamplingBilinear2d``; ``scipy.ndimage.zoom(order=1)``); works on jax and numpy arrays."""
    xp = jnp if isinstance(x, jax.Array) else np
    for ax, n_out in zip(axes, size):
        if x.shape[ax] == n_out:
            continue
        i0, i1, w = linear_coords(x.shape[ax], n_out)
        shape = [1] * x.ndim
        shape[ax] = n_out
        w = xp.asarray(w, x.dtype).reshape(shape)
        x = xp.take(x, i0, axis=ax) * (1 - w) + xp.take(x, i1, axis=ax) * w
    return x


class StdConv(nn.Module):
    """Weight-standardised convolution (bias-free), explicit symmetric padding ``padding``."""

    features: int
    kernel_size: int
    strides: int = 1
    padding: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, p = self.kernel_size, self.padding
        w = self.param("kernel", KERNEL_INIT, (k, k, x.shape[-1], self.features))
        mean = jnp.mean(w, axis=(0, 1, 2), keepdims=True)
        var = jnp.mean(jnp.square(w - mean), axis=(0, 1, 2), keepdims=True)
        w = (w - mean) / jnp.sqrt(var + 1e-5)
        return jax.lax.conv_general_dilated(x.astype(self.dtype), w.astype(self.dtype), (self.strides,) * 2,
                                            ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def group_norm(groups: int, eps: float, dtype: Any, name: str) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, epsilon=eps, use_fast_variance=False, dtype=dtype, name=name)


class Unit(nn.Module):
    """The reference's ``PreActBottleneck`` (conv → GN → ReLU order, stride on the 3×3)."""

    features: int
    strides: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        cout, cmid, s, dt = self.features, self.features // 4, self.strides, self.dtype
        residual = x
        if s != 1 or x.shape[-1] != cout:
            residual = StdConv(cout, 1, s, 0, dt, name="conv_proj")(x)
            residual = group_norm(cout, 1e-5, dt, "gn_proj")(residual)
        y = nn.relu(group_norm(32, 1e-6, dt, "gn1")(StdConv(cmid, 1, 1, 0, dt, name="conv1")(x)))
        y = nn.relu(group_norm(32, 1e-6, dt, "gn2")(StdConv(cmid, 3, s, 1, dt, name="conv2")(y)))
        y = group_norm(32, 1e-6, dt, "gn3")(StdConv(cout, 1, 1, 0, dt, name="conv3")(y))
        return nn.relu(residual + y)


class Stage(nn.Module):
    """``block<i>``: ``units`` units named unit1…, the first with stride ``strides``."""

    features: int
    units: int
    strides: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for j in range(self.units):
            x = Unit(self.features, self.strides if j == 0 else 1, self.dtype, name=f"unit{j + 1}")(x)
        return x


class MlpBlock(nn.Module):
    mlp_dim: int
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, train: bool):
        init = nn.initializers.xavier_uniform()
        h = nn.Dense(self.mlp_dim, kernel_init=init, bias_init=nn.initializers.normal(1e-6), dtype=self.dtype,
                     name="Dense_0")(z)
        h = nn.Dropout(self.dropout, deterministic=not train)(nn.gelu(h, approximate=False))
        h = nn.Dense(z.shape[-1], kernel_init=init, bias_init=nn.initializers.normal(1e-6), dtype=self.dtype,
                     name="Dense_1")(h)
        return nn.Dropout(self.dropout, deterministic=not train)(h)


class EncoderBlock(nn.Module):
    """The reference's ``Block``: pre-LN attention (no attention dropout, as its ViT-B config) and MLP."""

    num_heads: int = HEADS
    mlp_dim: int = MLP
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, train: bool):
        h = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="LayerNorm_0")(z)
        h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype,
                                            kernel_init=nn.initializers.xavier_uniform(), deterministic=True,
                                            name="MultiHeadDotProductAttention_1")(h, h)
        z = z + h
        h = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="LayerNorm_2")(z)
        return z + MlpBlock(self.mlp_dim, self.dropout, self.dtype, name="MlpBlock_3")(h, train)


class PosEmbed(nn.Module):
    """``posembed_input``: the (h, w, D) grid of the ``init`` input, resized for other inputs."""

    @nn.compact
    def __call__(self, h: int, w: int, d: int):
        if self.has_variable("params", "pos_embedding"):  # its grid is the one seen at init
            pos = self.get_variable("params", "pos_embedding")
        else:
            pos = self.param("pos_embedding", nn.initializers.normal(0.02), (h, w, d))
        return resize_linear(pos, (h, w), axes=(0, 1))


class Transformer(nn.Module):
    num_layers: int = LAYERS
    num_heads: int = HEADS
    mlp_dim: int = MLP
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        n, h, w, d = x.shape
        z = x + PosEmbed(name="posembed_input")(h, w, d).astype(x.dtype)
        z = nn.Dropout(self.dropout, deterministic=not train)(z.reshape(n, h * w, d))
        for i in range(self.num_layers):
            z = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.dtype, name=f"encoderblock_{i}")(z, train)
        z = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="encoder_norm")(z)
        return z.reshape(n, h, w, d)


class R50ViT(nn.Module):
    """The hybrid encoder above; returns [s_2, s_4, s_8, z] (widths 64, 256, 512, 768)."""

    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_input(x.shape, "R50ViT")
        n, hh, ww, _ = x.shape
        dt = self.dtype
        x = StdConv(WIDTH, 7, 2, 3, dt, name="conv_root")(x.astype(dt))
        x = nn.relu(group_norm(32, 1e-6, dt, "gn_root")(x))
        skips = [x]
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
        for i, units in enumerate(UNITS):
            x = Stage(WIDTH * 4 * 2**i, units, 1 if i == 0 else 2, dt, name=f"block{i + 1}")(x)
            if i < len(UNITS) - 1:  # the reference's zero padding of a short skip (block1's map)
                h, w = hh // 4 // 2**i, ww // 4 // 2**i
                skips.append(jnp.pad(x, ((0, 0), (0, h - x.shape[1]), (0, w - x.shape[2]), (0, 0))))
        x = nn.Conv(HIDDEN, (1, 1), dtype=dt, name="embedding")(x)
        z = Transformer(dropout=self.dropout, dtype=dt, name="Transformer")(x, train)
        return [*skips, z]


def check_input(shape, who: str) -> None:
    if len(shape) != 4:
        raise ValueError(f"{who}: expected an NHWC batch, got shape {tuple(shape)}")
    if shape[1] % STRIDE or shape[2] % STRIDE:
        raise ValueError(f"{who} on encoder {NAME!r}: input shape {tuple(shape)} has H x W = {shape[1]}x{shape[2]}, "
                         f"which must be divisible by {STRIDE} (the transformer's tokens are the stride-{STRIDE} "
                         f"map); resize or crop to a multiple of {STRIDE}")


def channels() -> tuple[int, ...]:
    """Widths of [s_2, s_4, s_8, z]."""
    return (WIDTH, WIDTH * 4, WIDTH * 8, HIDDEN)


# --- weights ---------------------------------------------------------------------------------

def read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` by key (no pickles), without a training checkpoint's 'opt/target/'."""
    try:
        with np.load(path, allow_pickle=False) as f:
            state = {k: np.asarray(f[k]) for k in f.files}
    except Exception as e:  # zipfile / ValueError for corrupt or pickled content
        raise DataError(path, f"not a readable .npz of arrays ({e})") from e
    prefix = "opt/target/"
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A weights file as a dict in the npz layout: ``.npz`` as is, a timm state dict translated."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(path, "no such weights file")
    if path.lower().endswith(".npz"):
        return read_npz(path)
    return timm_to_npz(read_state_dict(path), path)


_TIMM_BACKBONE = "patch_embed.backbone."
_T_UNIT = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.(conv\d|norm\d|downsample\.conv|downsample\.norm)\.(weight|bias)$")
_T_BLOCK = re.compile(r"blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")
_T_NAMES = {"norm1": "LayerNorm_0", "norm2": "LayerNorm_2", "mlp.fc1": "MlpBlock_3/Dense_0",
            "mlp.fc2": "MlpBlock_3/Dense_1"}
_T_UNIT_NAMES = {"downsample.conv": "conv_proj", "downsample.norm": "gn_proj"}
_T_IGNORED = re.compile(r"^(head|fc_norm|pre_logits)\.|^cls_token$|num_batches_tracked$")


def _hwio(w):
    return np.asarray(w).transpose(2, 3, 1, 0)


def _norm_leaf(leaf: str) -> str:
    return "scale" if leaf == "weight" else "bias"


def timm_to_npz(state: Mapping[str, np.ndarray], path: str) -> dict[str, np.ndarray]:
    """timm's ``vit_base_r50_s16_224`` state dict in the npz layout (module docstring); unknown keys
    raise ``DataError`` (missing ones are reported by ``convert_npz``, under their npz names)."""
    out, unexpected, misshaped = {}, [], []
    for key, v in state.items():
        if _T_IGNORED.search(key):
            continue
        try:
            got = _timm_entry(key, np.asarray(v, np.float32))
        except ValueError:  # a reshape to ViT-B's heads that does not fit
            misshaped.append(f"{key}: file {tuple(np.shape(v))}, not ViT-B/16's layout ({HEADS} heads)")
            continue
        if got is None:
            unexpected.append(key)
        out.update(got or {})
    if unexpected or misshaped:
        raise DataError(path, mismatch_message([], sorted(unexpected), misshaped) + "\n  (read as timm's "
                        "vit_base_r50_s16_224 state dict; the paper's weights are the .npz)")
    return out


def _timm_entry(key: str, v: np.ndarray) -> dict[str, np.ndarray] | None:
    simple = {"patch_embed.proj.weight": ("embedding/kernel", _hwio), "patch_embed.proj.bias": ("embedding/bias", None),
              "pos_embed": (POS_KEY, None), "norm.weight": ("Transformer/encoder_norm/scale", None),
              "norm.bias": ("Transformer/encoder_norm/bias", None),
              _TIMM_BACKBONE + "stem.conv.weight": ("conv_root/kernel", _hwio),
              _TIMM_BACKBONE + "stem.norm.weight": ("gn_root/scale", None),
              _TIMM_BACKBONE + "stem.norm.bias": ("gn_root/bias", None)}
    if key in simple:
        name, fn = simple[key]
        return {name: fn(v) if fn else v}
    m = _T_UNIT.fullmatch(key[len(_TIMM_BACKBONE):]) if key.startswith(_TIMM_BACKBONE) else None
    if m:
        i, j, mod, leaf = m.groups()
        mod = _T_UNIT_NAMES.get(mod, mod.replace("norm", "gn"))
        p = f"block{int(i) + 1}/unit{int(j) + 1}/{mod}/"
        return {p + "kernel": _hwio(v)} if leaf == "weight" and v.ndim == 4 else {p + _norm_leaf(leaf): v}
    m = _T_BLOCK.fullmatch(key)
    if not m:
        return None
    layer, mod, leaf = m.groups()
    p = f"Transformer/encoderblock_{layer}/"
    mha = p + "MultiHeadDotProductAttention_1/"
    d = v.shape[-1] if leaf == "weight" else v.shape[0] // (3 if mod == "attn.qkv" else 1)
    hd = (HEADS, d // HEADS)
    if mod == "attn.qkv":
        parts = np.split(v, 3, axis=0)
        return {f"{mha}{n}/{'kernel' if leaf == 'weight' else 'bias'}":
                (q.T.reshape(q.shape[1], *hd) if leaf == "weight" else q.reshape(hd))
                for n, q in zip(("query", "key", "value"), parts)}
    if mod == "attn.proj":
        return {mha + "out/kernel": v.T.reshape(*hd, v.shape[0])} if leaf == "weight" else {mha + "out/bias": v}
    name = p + _T_NAMES[mod]
    if mod.startswith("mlp"):
        return {f"{name}/kernel": v.T} if leaf == "weight" else {f"{name}/bias": v}
    return {f"{name}/{_norm_leaf(leaf)}": v}


def _pos_grid(a: np.ndarray, shape: tuple) -> np.ndarray | None:
    """The file's (1, [1 +] g², D) position embedding as the model's (h, w, D) grid, None if unfit."""
    if a.ndim != 3 or a.shape[0] != 1 or a.shape[2] != shape[2]:
        return None
    n = a.shape[1]
    for drop in (0, 1):  # the reference: same size as is, else the class token dropped
        g = int(round(np.sqrt(n - drop)))
        if g * g == n - drop and g > 0:
            grid = a[0, drop:].reshape(g, g, shape[2]).astype(np.float32)
            return resize_linear(grid, shape[:2], axes=(0, 1))
    return None


def _leaf_array(key: str, a: np.ndarray, shape: tuple) -> np.ndarray | None:
    """``a`` (file layout) as the model's leaf of ``shape``, or None when it cannot be."""
    if key == POS_KEY:
        return _pos_grid(a, shape)
    if key == "/".join(FIRST_CONV):
        if a.ndim != 4 or a.shape[:2] + a.shape[3:] != shape[:2] + shape[3:]:
            return None
        return adapt_first_conv(a.transpose(3, 2, 0, 1).astype(np.float32), shape[2]).transpose(2, 3, 1, 0)
    if len(shape) == 1 and a.ndim > 1 and all(s == 1 for s in a.shape[:-1]):
        a = a.reshape(-1)  # a (1, 1, 1, C) GroupNorm vector
    return a.astype(np.float32) if tuple(a.shape) == tuple(shape) else None


def convert_npz(state: Mapping[str, np.ndarray], shapes: Mapping[tuple, tuple], path: str) -> dict[tuple, np.ndarray]:
    """Flat ``{(collection, *path): array}`` for the leaves in ``shapes`` from a dict in the npz
    layout; ``DataError`` listing every missing, unexpected and mis-shaped key (file shapes)."""
    out, missing, misshaped, used = {}, [], [], set()
    for leaf, shape in shapes.items():
        key = "/".join(leaf[1:])
        if key not in state:
            missing.append(f"{key} {_file_shape(key, tuple(shape))}")
            continue
        used.add(key)
        a = _leaf_array(key, np.asarray(state[key]), tuple(shape))
        if a is None:
            misshaped.append(f"{key}: file {tuple(np.shape(state[key]))}, expected {_file_shape(key, tuple(shape))}")
            continue
        out[leaf] = a
    unexpected = sorted(k for k in state if k not in used and not IGNORED.match(k))
    if missing or unexpected or misshaped:
        raise DataError(path, mismatch_message(missing, unexpected, misshaped).replace("state dict", "weights file", 1))
    return out


def _file_shape(key: str, shape: tuple) -> tuple:
    """The shape the npz holds for a model leaf of ``shape`` (the position embedding: 1 + 14² tokens)."""
    if key == POS_KEY:
        return (1, 1 + 14 * 14, shape[2])
    if key == "/".join(FIRST_CONV):
        return (*shape[:2], 3, shape[3])
    return shape


def load_weights(path: str | os.PathLike, shapes: Mapping[tuple, tuple]) -> dict:
    """Variables ``{'params': …}`` for a model encoder with leaves ``shapes`` ({(collection, *path):
    shape}, from the model's own variables: they fix the input channels and the position grid)."""
    if ("params", *FIRST_CONV) not in shapes:
        raise ValueError(f"the model's encoder is not a {NAME}: it has no {'/'.join(FIRST_CONV)}")
    flat = convert_npz(read_weights(path), shapes, os.fspath(path))
    return traverse_util.unflatten_dict(flat)
