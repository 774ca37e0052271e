"""ResNet encoders (He et al. 2016, "Deep Residual Learning for Image Recognition"), layer for
layer as torchvision defines them (``torchvision.models.resnet``, the "v1.5" variant whose
Bottleneck strides on its 3×3 convolution), NHWC:

  stem     conv1 7×7/2 (pad 3, no bias) → bn1 → ReLU        → f_0 (stride 2, 64 ch.)
  pool     3×3/2 max pooling, pad 1 (padded with -inf, as PyTorch)
  layer_i  ``layers[i]`` blocks, the first of layers 2-4 with stride 2  → f_i (stride 2^(i+1))
  Basic       y = ReLU(BN(conv3×3(ReLU(BN(conv3×3/s(x))))) + S(x))              (ResNet-18/34)
  Bottleneck  y = ReLU(BN(conv1×1(ReLU(BN(conv3×3/s(ReLU(BN(conv1×1(x))))))))) + S(x))
              with 4× the width at the output                                       (ResNet-50)
  S        identity, or conv1×1/s (no bias) → BN when the stride or width changes ("downsample")

``ResNet.__call__(x, train)`` returns the five maps [f_0, ..., f_4] at strides 2, 4, 8, 16, 32
(the stem's ReLU output is the stride-2 map, as segmentation_models_pytorch's ResNet encoders).
Every padding is explicit, so a stride-2 convolution of an even-sized map pads as PyTorch does
(XLA's 'SAME' would pad (0, 1)). BatchNorm uses torchvision's ε = 1e-5 and momentum 0.1 (flax
0.9); convolutions start as torchvision's (He normal, fan-out). Module names mirror the
state-dict keys (``torch_weights`` maps them): conv1, bn1, layer1..4 / block<j> /
conv<k>, bn<k>, downsample_conv, downsample_bn.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.models.blocks import make_norm

KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # kaiming_normal_(fan_out, relu)


def conv(features: int, k: int, stride: int, name: str, dtype: Any) -> nn.Conv:
    """A bias-free k×k convolution with PyTorch's padding k // 2 on every side."""
    p = k // 2
    return nn.Conv(features, (k, k), strides=(stride, stride), padding=((p, p), (p, p)), use_bias=False,
                   kernel_init=KERNEL_INIT, dtype=dtype, name=name)


def max_pool_3x3(x):
    """3×3 max pooling, stride 2, padding 1 (flax pads a max pool with -inf, as PyTorch)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class BasicBlock(nn.Module):
    """ResNet-18/34's block: two 3×3 convolutions (the first with stride ``strides``)."""

    features: int
    strides: int = 1
    dtype: Any = jnp.float32
    expansion = 1

    @nn.compact
    def __call__(self, x, train: bool):
        bn = lambda name: make_norm("batch", train, self.dtype, name=name)
        y = nn.relu(bn("bn1")(conv(self.features, 3, self.strides, "conv1", self.dtype)(x)))
        y = bn("bn2")(conv(self.features, 3, 1, "conv2", self.dtype)(y))
        return nn.relu(y + shortcut(self, x, train))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1×1 → 3×3 (stride ``strides``, v1.5) → 1×1 to 4 × ``features``."""

    features: int
    strides: int = 1
    dtype: Any = jnp.float32
    expansion = 4

    @nn.compact
    def __call__(self, x, train: bool):
        bn = lambda name: make_norm("batch", train, self.dtype, name=name)
        y = nn.relu(bn("bn1")(conv(self.features, 1, 1, "conv1", self.dtype)(x)))
        y = nn.relu(bn("bn2")(conv(self.features, 3, self.strides, "conv2", self.dtype)(y)))
        y = bn("bn3")(conv(self.features * self.expansion, 1, 1, "conv3", self.dtype)(y))
        return nn.relu(y + shortcut(self, x, train))


def shortcut(block, x, train: bool):
    """S(x): identity, or torchvision's ``downsample`` (1×1/s conv + BN) when stride or width change."""
    out = block.features * block.expansion
    if block.strides == 1 and x.shape[-1] == out:
        return x
    x = conv(out, 1, block.strides, "downsample_conv", block.dtype)(x)
    return make_norm("batch", train, block.dtype, name="downsample_bn")(x)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResLayer(nn.Module):
    """torchvision's ``layer<i>``: ``blocks`` blocks, the first with stride ``strides``."""

    block: str
    features: int
    blocks: int
    strides: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        for j in range(self.blocks):
            x = BLOCKS[self.block](self.features, self.strides if j == 0 else 1, self.dtype,
                                   name=f"block{j}")(x, train)
        return x


class ResNet(nn.Module):
    """A torchvision ResNet without its classifier (avgpool, fc); returns [f_0, ..., f_4]."""

    block: str = "basic"
    layers: Sequence[int] = (2, 2, 2, 2)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        if x.ndim != 4:
            raise ValueError(f"ResNet: expected an NHWC batch, got shape {x.shape}")
        if self.block not in BLOCKS:
            raise ValueError(f"ResNet: unknown block {self.block!r}; use one of {', '.join(BLOCKS)}")
        x = conv(64, 7, 2, "conv1", self.dtype)(x.astype(self.dtype))
        x = nn.relu(make_norm("batch", train, self.dtype, name="bn1")(x))
        feats = [x]
        x = max_pool_3x3(x)
        for i, n in enumerate(self.layers):
            x = ResLayer(self.block, 64 * 2**i, n, 1 if i == 0 else 2, self.dtype, name=f"layer{i + 1}")(x, train)
            feats.append(x)
        return feats


def channels(block: str) -> tuple[int, ...]:
    """Widths of [f_0, ..., f_4]."""
    e = BLOCKS[block].expansion
    return (64, 64 * e, 128 * e, 256 * e, 512 * e)
