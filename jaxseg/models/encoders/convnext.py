"""ConvNeXt encoder (Liu et al. 2022, "A ConvNet for the 2020s"), as torchvision and timm define
ConvNeXt-Tiny (depths 3, 3, 9, 3; widths 96, 192, 384, 768), NHWC:

  stem        conv 4×4/4 (bias) → LayerNorm                                   (stride 4)
  downsample  LayerNorm → conv 2×2/2 (bias), before stages 2-4
  block       y = x + γ ⊙ Linear_{4C→C}(GELU(Linear_{C→4C}(LN(DWConv₇ₓ₇(x)))))
              depthwise 7×7 conv (pad 3, bias), LayerNorm, inverted bottleneck with exact (erf)
              GELU as torch, layer scale γ (initialised to 1e-6)
  LayerNorm   over channels, ε = 1e-6, variance computed as E[(x − μ)²] (as torch)

ConvNeXt has no stride-2 map. ``ConvNeXt.__call__(x, train)`` returns five entries like the
ResNets, [None, f_1, f_2, f_3, f_4] with f_i the output of stage i at stride 2^(i+1): the
stride-2 slot is ``None`` (no invented map; the encoder U-Net's decoder skips a None skip and
its stride-2 stage upsamples without concatenating). Stochastic depth (torchvision's 0.1 for
Tiny) is a training regulariser that is the identity in evaluation; it is left out, so a
fine-tuned encoder trains without it. Module names (stem_conv, stem_norm, downsample<i>/norm,
conv, stage<i>/block<j>/dwconv, norm, pwconv1, pwconv2, layer_scale) are mapped to the
torchvision and timm state-dict keys by ``torch_weights``.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

INIT = nn.initializers.truncated_normal(0.02)  # torchvision: trunc_normal_(std=0.02), zero bias


def layer_norm(name: str, dtype: Any) -> nn.LayerNorm:
    """Channels-last LayerNorm, ε = 1e-6, two-pass variance (torch's ``F.layer_norm``)."""
    return nn.LayerNorm(epsilon=1e-6, use_fast_variance=False, dtype=dtype, name=name)


class CNBlock(nn.Module):
    """One ConvNeXt block (torchvision's ``CNBlock``; timm's ``ConvNeXtBlock``)."""

    layer_scale_init: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        y = nn.Conv(c, (7, 7), padding=((3, 3), (3, 3)), feature_group_count=c, kernel_init=INIT,
                    dtype=self.dtype, name="dwconv")(x)
        y = layer_norm("norm", self.dtype)(y)
        y = nn.gelu(nn.Dense(4 * c, kernel_init=INIT, dtype=self.dtype, name="pwconv1")(y), approximate=False)
        y = nn.Dense(c, kernel_init=INIT, dtype=self.dtype, name="pwconv2")(y)
        gamma = self.param("layer_scale", nn.initializers.constant(self.layer_scale_init), (c,))
        return x + gamma.astype(y.dtype) * y


class Stage(nn.Module):
    """``depth`` ConvNeXt blocks at one resolution."""

    depth: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for j in range(self.depth):
            x = CNBlock(dtype=self.dtype, name=f"block{j}")(x)
        return x


class Downsample(nn.Module):
    """LayerNorm → 2×2 stride-2 convolution to ``features`` channels."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = layer_norm("norm", self.dtype)(x)
        return nn.Conv(self.features, (2, 2), strides=(2, 2), padding="VALID", kernel_init=INIT,
                       dtype=self.dtype, name="conv")(x)


class ConvNeXt(nn.Module):
    """ConvNeXt features without the classifier head; returns [None, f_1, f_2, f_3, f_4]."""

    depths: Sequence[int] = (3, 3, 9, 3)
    dims: Sequence[int] = (96, 192, 384, 768)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no batch statistics, no dropout
        if x.ndim != 4:
            raise ValueError(f"ConvNeXt: expected an NHWC batch, got shape {x.shape}")
        x = nn.Conv(self.dims[0], (4, 4), strides=(4, 4), padding="VALID", kernel_init=INIT, dtype=self.dtype,
                    name="stem_conv")(x.astype(self.dtype))
        x = layer_norm("stem_norm", self.dtype)(x)
        feats = [None]
        for i, (depth, dim) in enumerate(zip(self.depths, self.dims)):
            if i > 0:
                x = Downsample(dim, self.dtype, name=f"downsample{i}")(x)
            x = Stage(depth, self.dtype, name=f"stage{i}")(x)
            feats.append(x)
        return feats


def channels(dims: Sequence[int]) -> tuple:
    """Widths of the five entries (None for the missing stride-2 map)."""
    return (None, *dims)
