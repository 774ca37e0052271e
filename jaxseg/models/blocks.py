"""Building blocks shared by every model family (thesis §4.2-4.3).

Notation of thesis §4.3.1: C_{a,b} is a convolution followed by (optional)
BatchNorm and an activation; B_{a,b} = C_{a,b} ∘ C_{b,b} is the convolutional
block; U is 2x nearest upsampling and the upconvolution is U_{a,b} = C_{a,b} ∘ U.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.models.initializers import kernel_init

Dtype = Any


def channel_list(features: int | Sequence[int], depth: int) -> tuple[int, ...]:
    """Channels c_1..c_d: an explicit list, or base width doubled at every level."""
    if isinstance(features, int):
        return tuple(features * 2**i for i in range(depth))
    feats = tuple(int(f) for f in features)
    if len(feats) != depth:
        raise ValueError(f"features lists {len(feats)} channel counts but depth is {depth}")
    return feats


def check_divisible(shape: Sequence[int], levels: int, model: str) -> None:
    """Raises a clear error when H or W cannot be halved ``levels`` times."""
    factor = 2**levels
    h, w = shape[1], shape[2]
    if h % factor or w % factor:
        raise ValueError(
            f"{model}: input size {h}x{w} must be divisible by 2^(depth-1) = {factor}; "
            f"resize or crop to a multiple of {factor}, or lower the depth")


class ConvNormAct(nn.Module):
    """C_{a,b}: k×k convolution, optional BatchNorm, activation, optional dropout."""

    features: int
    kernel_size: int = 3
    batch_norm: bool = True
    dropout: float = 0.0
    activation: Callable = nn.relu
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        k = self.kernel_size
        x = nn.Conv(self.features, (k, k), padding="SAME", use_bias=not self.batch_norm,
                    kernel_init=kernel_init(self.weight_init, self.fan_mode), dtype=self.dtype)(x)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype)(x)
        x = self.activation(x)
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return x


class ConvBlock(nn.Module):
    """B_{a,b} = C_{a,b} ∘ C_{b,b}: two ConvNormAct layers (thesis §4.3.1)."""

    features: int
    batch_norm: bool = True
    dropout: float = 0.0
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        for _ in range(2):
            x = ConvNormAct(self.features, batch_norm=self.batch_norm, dropout=self.dropout,
                            weight_init=self.weight_init, fan_mode=self.fan_mode, dtype=self.dtype)(x, train)
        return x


def upsample_nearest(x):
    """U: replaces every pixel with a 2×2 grid of copies (thesis §4.3.1)."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
    return x.reshape(n, 2 * h, 2 * w, c)


def max_pool(x):
    """P: 2×2 max pooling with stride 2."""
    return nn.max_pool(x, (2, 2), strides=(2, 2))


class UpConv(nn.Module):
    """Upconvolution U_{a,b}: nearest upsampling + C_{a,b}, or a 2×2 stride-2 transposed conv."""

    features: int
    mode: str = "nearest"  # 'nearest' | 'transpose'
    batch_norm: bool = True
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        if self.mode == "nearest":
            return ConvNormAct(self.features, batch_norm=self.batch_norm, weight_init=self.weight_init,
                               fan_mode=self.fan_mode, dtype=self.dtype)(upsample_nearest(x), train)
        if self.mode == "transpose":
            return nn.ConvTranspose(self.features, (2, 2), strides=(2, 2),
                                    kernel_init=kernel_init(self.weight_init, self.fan_mode),
                                    dtype=self.dtype)(x)
        raise ValueError(f"unknown upsampling mode {self.mode!r}; use 'nearest' or 'transpose'")
