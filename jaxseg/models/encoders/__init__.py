"""Pretrained-weight encoders for the U-Nets: torchvision's ResNet-18/34/50 and ConvNeXt-Tiny in flax.

  name           module                        widths of [f_0, ..., f_4] (strides 2 ... 32)
  resnet18       resnet.ResNet(basic, 2 2 2 2)       64, 64, 128, 256, 512
  resnet34       resnet.ResNet(basic, 3 4 6 3)       64, 64, 128, 256, 512
  resnet50       resnet.ResNet(bottleneck, 3 4 6 3)  64, 256, 512, 1024, 2048
  convnext_tiny  convnext.ConvNeXt(3 3 9 3)          None, 96, 192, 384, 768  (no stride-2 map)
  r50_vit_b16    r50_vit.R50ViT (TransUNet's hybrid)  64, 256, 512, 768 (strides 2, 4, 8, 16; model 'transunet' only)

Every encoder is a flax module called as ``(x, train)`` on NHWC x (H, W divisible by 32) that
returns the five feature maps (``None`` where it has none). ``build(name)`` makes one,
``channels(name)`` gives its widths, ``load_torch_weights(name, path, in_channels)`` reads a
torchvision (or timm, for ConvNeXt) state dict from ``.safetensors``/``.pth`` into its variables
(``torch_weights``), and ``load_encoder_weights(variables, name, path)`` puts those into a
model's variables under the top-level name 'encoder' (``params`` and ``batch_stats``), checking
every shape. Weights trained on ImageNet expect inputs normalised with ImageNet's mean and std.
'r50_vit_b16' (R50 + ViT-B/16, both under 'encoder') is TransUNet's encoder, not a U-Net family
encoder: ``build`` refuses it, and ``load_encoder_weights`` reads the paper's ``.npz`` or timm's
state dict for it (``r50_vit``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
from flax import traverse_util

from jaxseg.models.encoders import convnext, r50_vit, resnet
from jaxseg.models.encoders.torch_weights import convert, convnext_format, convnext_key, read_state_dict, resnet_key
from jaxseg.registry import Registry

# name -> (family, module fields)
SPECS = {
    "resnet18": ("resnet", dict(block="basic", layers=(2, 2, 2, 2))),
    "resnet34": ("resnet", dict(block="basic", layers=(3, 4, 6, 3))),
    "resnet50": ("resnet", dict(block="bottleneck", layers=(3, 4, 6, 3))),
    "convnext_tiny": ("convnext", dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768))),
}
_MODULES = {"resnet": resnet.ResNet, "convnext": convnext.ConvNeXt}
FIRST_CONV = {"resnet": ("conv1", "kernel"), "convnext": ("stem_conv", "kernel")}

ENCODERS = Registry("encoder")  # name -> factory(dtype=float32, name=None) -> flax module


def _factory(family: str, fields: dict):
    def make(dtype: Any = jnp.float32, name: Optional[str] = None):
        return _MODULES[family](**fields, dtype=dtype, name=name)

    return make


for _name, (_family, _fields) in SPECS.items():
    ENCODERS.register(_name, _factory(_family, _fields))


def names() -> list[str]:
    """The encoder names ``config.model.encoder`` accepts (``build``'s and TransUNet's r50_vit_b16)."""
    return sorted([*ENCODERS.names(), r50_vit.NAME])


def build(encoder: str, /, **kw):
    """The flax module of encoder ``encoder`` (keywords: ``dtype``, ``name`` — the module's)."""
    if encoder == r50_vit.NAME:
        raise ValueError(f"encoder {encoder!r} is TransUNet's R50-ViT-B/16 hybrid: use it with "
                         f"config.model.name='transunet'; the U-Net family takes {', '.join(ENCODERS.names())}")
    ENCODERS.check(encoder, kw)
    return ENCODERS.get(encoder)(**kw)


def family(name: str) -> str:
    ENCODERS.get(name)  # ValueError listing the names
    return SPECS[name][0]


def channels(name: str) -> tuple:
    """Widths of the five feature maps (strides 2, 4, 8, 16, 32); None where there is no map."""
    fam, fields = family(name), SPECS[name][1]
    return resnet.channels(fields["block"]) if fam == "resnet" else convnext.channels(fields["dims"])


def variable_shapes(name: str, in_channels: int = 3) -> dict[tuple, tuple]:
    """{(collection, *path): shape} of encoder ``name``'s variables for ``in_channels`` inputs
    (traced with ``jax.eval_shape``: nothing is computed)."""
    module = build(name)
    x = jnp.zeros((1, 32, 32, in_channels))
    tree = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, False))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(tree).items()}


def load_torch_weights(name: str, path: str | os.PathLike, in_channels: int = 3) -> dict:
    """Variables ``{'params': …[, 'batch_stats': …]}`` of encoder ``name`` from a PyTorch state dict.

    ``in_channels`` ≠ 3 adapts the first convolution (1: RGB kernels summed; others: repeated and
    scaled, see ``torch_weights``). A file that does not fit raises ``DataError`` listing the
    missing, unexpected and mis-shaped keys.
    """
    fam = family(name)
    state = read_state_dict(path)
    key_of = resnet_key if fam == "resnet" else (lambda p, f=convnext_format(state): convnext_key(p, f))
    flat = convert(state, variable_shapes(name, in_channels), key_of, ("params", *FIRST_CONV[fam]),
                   os.fspath(path))
    return traverse_util.unflatten_dict(flat)


def load_encoder_weights(variables: Mapping, encoder_name: str, path: str | os.PathLike,
                         in_channels: Optional[int] = None) -> dict:
    """``variables`` of an encoder U-Net with ``['params' | 'batch_stats']['encoder']`` replaced by
    the weights in ``path`` (cast to the dtypes they replace). ``in_channels`` defaults to the
    model's (its first convolution's input width). Raises ``ValueError`` when the model's encoder
    is not ``encoder_name``'s (every differing leaf listed)."""
    params = variables.get("params", {})
    if "encoder" not in params:
        raise ValueError(f"the variables have no params['encoder'] (top-level names: {sorted(params)}); "
                         "build the model with config.model.encoder set")
    if encoder_name == r50_vit.NAME:  # shapes from the model: its input channels and position grid
        loaded = r50_vit.load_weights(path, _shapes({c: dict(variables.get(c, {})).get("encoder", {})
                                                     for c in ("params", "batch_stats")}))
    else:
        loaded = load_torch_weights(encoder_name, path, _in_channels(params, encoder_name, in_channels))
    old = {coll: dict(variables.get(coll, {})).get("encoder", {}) for coll in loaded}
    _check_same_leaves(old, loaded, encoder_name)
    out = dict(variables)
    for coll, tree in loaded.items():
        flat_old = traverse_util.flatten_dict(dict(old[coll]))
        new = {k: jnp.asarray(v, flat_old[k].dtype) for k, v in traverse_util.flatten_dict(tree).items()}
        out[coll] = {**dict(variables[coll]), "encoder": traverse_util.unflatten_dict(new)}
    return out


def _in_channels(params: Mapping, encoder_name: str, in_channels: Optional[int]) -> int:
    """``in_channels``, or the input width of the model encoder's first convolution."""
    if in_channels is not None:
        return in_channels
    first = FIRST_CONV[family(encoder_name)]
    node = params["encoder"]
    for p in first:
        if p not in node:
            raise ValueError(f"the model's encoder is not a {encoder_name}: it has no {'/'.join(first)}")
        node = node[p]
    return int(node.shape[2])


def _shapes(tree: Mapping) -> dict[tuple, tuple]:
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(dict(tree)).items()}


def _check_same_leaves(old: Mapping, new: Mapping, encoder_name: str) -> None:
    """``ValueError`` listing every leaf (collection/path) that one tree has and the other lacks or
    holds with another shape."""
    flat_old = traverse_util.flatten_dict({c: dict(t) for c, t in old.items()})
    flat_new = traverse_util.flatten_dict(dict(new))
    problems = [f"{'/'.join(k)} missing in the model" for k in flat_new if k not in flat_old]
    problems += [f"{'/'.join(k)} not in {encoder_name}'s weights" for k in flat_old if k not in flat_new]
    problems += [f"{'/'.join(k)}: model {tuple(flat_old[k].shape)}, weights {flat_new[k].shape}"
                 for k in flat_new if k in flat_old and tuple(flat_old[k].shape) != flat_new[k].shape]
    if problems:
        more = f"; … {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"the model's encoder does not match {encoder_name}'s weights ({len(problems)} "
                         f"leaves): " + "; ".join(problems[:20]) + more)


__all__ = ["ENCODERS", "SPECS", "build", "channels", "family", "load_encoder_weights", "load_torch_weights",
           "names", "read_state_dict", "variable_shapes"]
