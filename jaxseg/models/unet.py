"""U-Net of thesis §4.3.1 (Ronneberger et al. 2015).

UNet = C_{c_1,classes} ∘ f_up ∘ f_down, with
  f_down = ∘_{j=2..d} (B_{c_{j-1},c_j} ∘ P) ∘ B_{c_0,c_1}
  f_up   = ∘_{j=d-1..1} (B_{2c_j,c_j} ∘ Agg_j),   Agg_j(y) = (x^{(j)} | U_{c_{j+1},c_j}(y)).
The final 1×1 convolution returns logits (no activation).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.models.blocks import ConvBlock, UpConv, channel_list, check_divisible, max_pool
from jaxseg.models.initializers import kernel_init


class UNet(nn.Module):
    num_classes: int = 1
    features: int | Sequence[int] = 64
    depth: int = 5
    batch_norm: bool = True
    dropout: float = 0.0
    upsample: str = "nearest"
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_divisible(x.shape, self.depth - 1, "UNet")
        chans = channel_list(self.features, self.depth)
        common = dict(batch_norm=self.batch_norm, weight_init=self.weight_init, fan_mode=self.fan_mode,
                      dtype=self.dtype)
        x = x.astype(self.dtype)
        skips = []
        for level, c in enumerate(chans):
            if level > 0:
                x = max_pool(x)
            x = ConvBlock(c, dropout=self.dropout, **common)(x, train)
            skips.append(x)
        for level in range(self.depth - 2, -1, -1):
            y = UpConv(chans[level], mode=self.upsample, **common)(x, train)
            x = jnp.concatenate([skips[level], y], axis=-1)
            x = ConvBlock(chans[level], dropout=self.dropout, **common)(x, train)
        logits = nn.Conv(self.num_classes, (1, 1), kernel_init=kernel_init(self.weight_init, self.fan_mode),
                         dtype=self.dtype)(x)
        return logits.astype(jnp.float32)
