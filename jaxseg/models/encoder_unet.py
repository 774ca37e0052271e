"""The U-Net family on a pretrained encoder (``config.model.encoder``), as segmentation_models_pytorch's
``Unet`` (Yakubovskiy 2019) builds it on a torchvision/timm encoder:

  [f_0, ..., f_4] = E(x)                      strides 2, 4, 8, 16, 32 (``encoders``; f_0 None for ConvNeXt)
  y ← f_4;  for j = 5..1 (output stride 2^(j−1)):
      y ← B_{d_j}( U(y) | S_j(f_{j−2}, y) )   no skip at full resolution (j = 1), none where f is None
  logits = C_{1×1}(y)
U: 2× nearest upsampling ('nearest', smp's) or a 2×2 stride-2 transposed convolution keeping the
width ('transpose'); B: the family's ``ConvBlock`` (U-Net: two conv3×3 + BN + ReLU, as smp's
DecoderBlock; ResUNet: residual; R2U-Net: recurrent); S: identity, or the attention gate of
Attention U-Net (Oktay et al. 2018) on the skip. Decoder widths d = ``decoder_features``, deepest
first, smp's default (256, 128, 64, 32, 16). The encoder's variables live under the top-level name
'encoder' (``params`` and ``batch_stats``), where ``encoders.load_encoder_weights`` puts pretrained
weights and a trainer can freeze them by that prefix. H and W must be divisible by 32.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.models import encoders
from jaxseg.models.backbone import Head
from jaxseg.models.blocks import AttentionGate, UpConv, upsample_nearest

ModuleDef = Any
DECODER_FEATURES = (256, 128, 64, 32, 16)
STRIDE = 32


class EncoderDecoder(nn.Module):
    """The decoder above: ``features`` = (d_5, ..., d_1); blocks dec5 (stride 16) ... dec1 (full)."""

    features: Sequence[int]
    block: ModuleDef
    upsample: str = "nearest"
    gate: Optional[ModuleDef] = None
    init_args: tuple = ()

    @nn.compact
    def __call__(self, feats: Sequence[Any], train: bool):
        y = feats[-1]
        skips = [*feats[-2::-1], None]  # strides 16, 8, 4, 2, then none at full resolution
        for c, skip, j in zip(self.features, skips, range(len(self.features), 0, -1)):
            parts = [self._up(y, j, train)]
            if skip is not None:
                parts.append(self.gate(name=f"gate{j}")(skip, y, train) if self.gate is not None else skip)
            y = self.block(c, name=f"dec{j}")(jnp.concatenate(parts, axis=-1), train)
        return y

    def _up(self, y, j: int, train: bool):
        if self.upsample == "nearest":
            return upsample_nearest(y)
        if self.upsample == "transpose":
            return UpConv(y.shape[-1], mode="transpose", **dict(self.init_args), name=f"up{j}")(y, train)
        raise ValueError(f"unknown upsampling mode {self.upsample!r}; use 'nearest' or 'transpose'")


def check_input(model, x) -> Any:
    """NHWC, the model's ``in_channels``, H and W divisible by 32; cast to the compute dtype."""
    name = type(model).__name__
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an NHWC batch, got shape {x.shape}")
    if model.in_channels is not None and x.shape[-1] != model.in_channels:
        raise ValueError(f"{name}: input has {x.shape[-1]} channels, in_channels is {model.in_channels}")
    if x.shape[1] % STRIDE or x.shape[2] % STRIDE:
        raise ValueError(f"{name} on encoder {model.encoder!r}: input shape {tuple(x.shape)} has H x W = "
                         f"{x.shape[1]}x{x.shape[2]}, which must be divisible by {STRIDE} (the encoder's "
                         f"deepest map has stride {STRIDE}); resize or crop to a multiple of {STRIDE}")
    return x.astype(model.dtype)


def decoder_widths(model) -> tuple[int, ...]:
    widths = tuple(model.decoder_features or DECODER_FEATURES)
    if len(widths) != 5:
        raise ValueError(f"{type(model).__name__}: decoder_features lists {len(widths)} widths {widths}; an "
                         "encoder U-Net has 5 decoder stages (output strides 16, 8, 4, 2, 1), deepest first")
    return widths


def forward(model, x, train: bool):
    """Logits of a U-Net family ``model`` (``unet.UNet``) whose ``encoder`` is set; called from its
    ``__call__``, so the submodules made here are the model's: 'encoder', 'decoder', 'head'."""
    widths = decoder_widths(model)
    x = check_input(model, x)
    feats = encoders.build(model.encoder, dtype=model.dtype, name="encoder")(x, train)
    gate = (functools.partial(AttentionGate, norm=model.norm, **model.init_args)
            if model.attention else None)
    up_args = dict(norm=model.norm, **model.init_args)
    y = EncoderDecoder(widths, model.conv_block(), model.upsample, gate,
                       tuple(sorted(up_args.items())), name="decoder")(feats, train)
    return Head(model.num_classes, model.kernel_init(), model.dtype, name="head")(y)
