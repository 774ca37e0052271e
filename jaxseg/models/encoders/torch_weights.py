"""PyTorch state dicts → flax variables of the encoders (``resnet``, ``convnext``).

Reading: ``.safetensors`` with ``safetensors.numpy.load_file`` (no torch needed); ``.pth`` /
``.pt`` with ``torch.load(path, map_location='cpu', weights_only=True)`` when torch is importable
(a checkpoint dict holding the weights under 'state_dict' or 'model' is unwrapped). Nothing else
is ever unpickled.

Key names: torchvision's (ResNet: conv1, bn1, layer<i>.<j>.conv<k>/bn<k>/downsample.{0,1};
ConvNeXt: features.0.{0,1}, features.{1,3,5,7}.<j>.block.{0,2,3,5} and .layer_scale,
features.{2,4,6}.{0,1}) and timm's ConvNeXt (stem.{0,1}, stages.<i>.downsample.{0,1},
stages.<i>.blocks.<j>.conv_dw/norm/mlp.fc1/mlp.fc2/gamma). Classifier weights (fc.*,
classifier.*, head.*) and BatchNorm's num_batches_tracked are ignored.

Layouts: convolution OIHW → HWIO (a depthwise (C, 1, 7, 7) becomes (7, 7, 1, C), flax's
feature_group_count layout); Linear (out, in) → (in, out); layer scale (C, 1, 1) or (C,) → (C,);
BatchNorm weight/bias → scale/bias (params), running_mean/var → mean/var (batch_stats);
LayerNorm weight/bias → scale/bias.

First convolution for ``in_channels`` ≠ 3 (segmentation_models_pytorch's ``patch_first_conv``):
in_channels = 1 sums the RGB kernels, W' = Σ_c W[:, c]; any other count repeats the RGB kernels
cyclically and rescales, W'[:, i] = W[:, i mod 3] · 3 / in_channels (so a constant image gives
the same response).

Any mismatch raises one ``DataError`` naming the file and listing every missing, unexpected and
mis-shaped key (the file's shape and the expected one).
"""

from __future__ import annotations

import os
import re
from typing import Callable, Mapping

import numpy as np

from jaxseg.errors import DataError

IGNORED = re.compile(r"^(fc|classifier|head)\.|\.num_batches_tracked$")
_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` or ``.pth``/``.pt`` file as float32 NumPy arrays by name."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(path, "no such weights file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError as e:
            raise DataError(path, "reading .safetensors weights needs safetensors (pip install safetensors)") from e
        try:
            state = load_file(path)
        except Exception as e:  # safetensors raises its own error types for corrupt headers
            raise DataError(path, f"not a readable safetensors file ({e})") from e
    elif ext in (".pth", ".pt"):
        state = _read_torch(path)
    else:
        raise DataError(path, f"unknown weights format {ext!r}; use .safetensors, .pth or .pt")
    return {k: np.asarray(v) for k, v in state.items()}


def _read_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise DataError(path, "reading .pth/.pt weights needs torch (pip install torch), or convert the "
                              "file to .safetensors (safetensors.torch.save_file)") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError(path, f"not a readable PyTorch state dict ({e})") from e
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise DataError(path, f"holds a {type(obj).__name__}, not a state dict")
    return {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in obj.items() if isinstance(v, torch.Tensor)}


# --- flax path -> torch key ------------------------------------------------------------------

def resnet_key(path: tuple[str, ...]) -> str:
    """('layer1', 'block0', 'downsample_conv', 'kernel') → 'layer1.0.downsample.0.weight'."""
    parts = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
    mods = [parts.get(p, p[len("block"):] if re.fullmatch(r"block\d+", p) else p) for p in path[:-1]]
    return ".".join([*mods, _LEAF[path[-1]]])


_CN_BLOCK = {"torchvision": {"dwconv": "block.0", "norm": "block.2", "pwconv1": "block.3", "pwconv2": "block.5",
                             "layer_scale": "layer_scale"},
             "timm": {"dwconv": "conv_dw", "norm": "norm", "pwconv1": "mlp.fc1", "pwconv2": "mlp.fc2",
                      "layer_scale": "gamma"}}


def convnext_key(path: tuple[str, ...], fmt: str) -> str:
    """ConvNeXt flax path → torchvision ('features.…') or timm ('stem.…', 'stages.…') key."""
    tv = fmt == "torchvision"
    head, leaf = path[0], _LEAF.get(path[-1], path[-1])
    if head in ("stem_conv", "stem_norm"):
        i = 0 if head == "stem_conv" else 1
        return f"features.0.{i}.{leaf}" if tv else f"stem.{i}.{leaf}"
    n = int(re.sub(r"\D", "", head))
    if head.startswith("downsample"):
        i = 0 if path[1] == "norm" else 1
        return f"features.{2 * n}.{i}.{leaf}" if tv else f"stages.{n}.downsample.{i}.{leaf}"
    j = path[1][len("block"):]
    sub = _CN_BLOCK[fmt][path[2]]
    suffix = sub if path[2] == "layer_scale" else f"{sub}.{leaf}"
    return f"features.{2 * n + 1}.{j}.{suffix}" if tv else f"stages.{n}.blocks.{j}.{suffix}"


def convnext_format(state: Mapping[str, np.ndarray]) -> str:
    """'timm' when the keys are timm's (stem.*, stages.*), else 'torchvision'."""
    return "timm" if any(k.startswith(("stem.", "stages.")) for k in state) else "torchvision"


# --- layouts ---------------------------------------------------------------------------------

def torch_shape(flax_shape: tuple[int, ...], key: str) -> tuple[int, ...]:
    """The shape the state dict holds for a flax leaf of ``flax_shape``."""
    if len(flax_shape) == 4:  # HWIO -> OIHW
        h, w, i, o = flax_shape
        return (o, i, h, w)
    if len(flax_shape) == 2:  # (in, out) -> (out, in)
        return flax_shape[::-1]
    if key.endswith("layer_scale"):  # torchvision keeps (C, 1, 1)
        return (*flax_shape, 1, 1)
    return tuple(flax_shape)


def to_flax(array: np.ndarray, flax_shape: tuple[int, ...]) -> np.ndarray:
    """A torch-layout array in flax's layout (see the module docstring)."""
    a = np.asarray(array, np.float32)
    if a.ndim == 4:
        return a.transpose(2, 3, 1, 0)
    if a.ndim == 2:
        return a.T
    return a.reshape(flax_shape)


def adapt_first_conv(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """An OIHW RGB kernel for ``in_channels`` inputs (smp's rule, module docstring)."""
    if in_channels == weight.shape[1]:
        return weight
    if in_channels < 1:
        raise ValueError(f"in_channels must be at least 1, got {in_channels}")
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    idx = np.arange(in_channels) % weight.shape[1]
    return weight[:, idx] * (weight.shape[1] / in_channels)


# --- conversion ------------------------------------------------------------------------------

def convert(state: Mapping[str, np.ndarray], shapes: Mapping[tuple, tuple], key_of: Callable[[tuple], str],
            first_conv: tuple, path: str) -> dict[tuple, np.ndarray]:
    """Flat flax variables {(collection, *path): array} from ``state``, for the leaves in ``shapes``.

    ``key_of(path)`` names a leaf's torch key; ``first_conv`` is the (collection, *path) of the
    input convolution: the file may hold it for any number of input channels (3 for ImageNet
    weights), which ``adapt_first_conv`` adapts. Raises ``DataError`` listing every problem.
    """
    out, missing, misshaped, used = {}, [], [], set()
    for leaf, shape in shapes.items():
        key = key_of(leaf[1:])
        expected = torch_shape(tuple(shape), key)
        if leaf == first_conv:
            file_in = state[key].shape[1] if key in state and np.ndim(state[key]) == 4 else 3
            expected = (expected[0], file_in, *expected[2:])
        if key not in state:
            missing.append(f"{key} {expected}")
            continue
        used.add(key)
        got = tuple(state[key].shape)
        if got != expected:
            misshaped.append(f"{key}: file {got}, expected {expected}")
            continue
        a = state[key]
        if leaf == first_conv:
            a = adapt_first_conv(np.asarray(a, np.float32), shape[2])
        out[leaf] = to_flax(a, tuple(shape))
    unexpected = sorted(k for k in state if k not in used and not IGNORED.search(k))
    if missing or unexpected or misshaped:
        raise DataError(path, mismatch_message(missing, unexpected, misshaped))
    return out


def mismatch_message(missing, unexpected, misshaped) -> str:
    lines = ["the state dict does not fit the encoder:"]
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            lines.append(f"  {len(keys)} {title} key(s): " + "; ".join(keys))
    return "\n".join(lines)
