"""The two halves of the U-shaped networks (thesis §4.3.1), shared by every U-Net family.

Encoder (the downgoing part):
  x^{(1)} = B_{c_0,c_1}(x),   x^{(i)} = B_{c_{i-1},c_i}(D(x^{(i-1)})),  i = 2..d
Decoder (the upgoing part), from y = x^{(d)}:
  y ← B_{2c_i,c_i}(Agg_i(y)),  Agg_i(y) = (S_i(x^{(i)}, y) | U_{c_{i+1},c_i}(y)),  i = d-1..1
with D the downsampling (max pooling, or a strided conv), U the upconvolution
(``UpConv``), and S_i the skip: identity (U-Net) or an attention gate
(Attention U-Net, thesis §4.3.2). The blocks are passed in as module
constructors (``functools.partial`` of ``ConvBlock`` etc.), so each family
only chooses its parts.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

ModuleDef = Any


class Encoder(nn.Module):
    """Downgoing part: returns the per-level features [x^{(1)}, ..., x^{(d)}]."""

    features: Sequence[int]
    block: ModuleDef
    downsample: ModuleDef

    @nn.compact
    def __call__(self, x, train: bool):
        skips = []
        for level, c in enumerate(self.features):
            if level > 0:
                x = self.downsample(c, name=f"down{level + 1}")(x, train)
            x = self.block(c, name=f"enc{level + 1}")(x, train)
            skips.append(x)
        return skips


class Decoder(nn.Module):
    """Upgoing part: from the encoder's features to c_1 channels at full resolution.

    ``gate`` (optional) builds the skip gate S_i, called as ``gate(name=...)(x_i, y, train)``.
    """

    features: Sequence[int]
    block: ModuleDef
    upconv: ModuleDef
    gate: Optional[ModuleDef] = None

    @nn.compact
    def __call__(self, skips: Sequence[Any], train: bool):
        y = skips[-1]
        for level in range(len(self.features) - 2, -1, -1):
            c = self.features[level]
            skip = skips[level]
            if self.gate is not None:
                skip = self.gate(name=f"gate{level + 1}")(skip, y, train)
            up = self.upconv(c, name=f"up{level + 1}")(y, train)
            y = self.block(c, name=f"dec{level + 1}")(jnp.concatenate([skip, up], axis=-1), train)
        return y


class Head(nn.Module):
    """C_{c_1,classes}: the final 1×1 convolution to one logit map per class (float32 out)."""

    num_classes: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        logits = nn.Conv(self.num_classes, (1, 1), kernel_init=self.kernel_init, dtype=self.dtype)(x)
        return logits.astype(jnp.float32)
