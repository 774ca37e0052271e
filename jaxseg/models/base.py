"""Options every segmentation model accepts (thesis Tables 5-6), so one ``config.model`` works
for any registry name.

  num_classes   logit maps out (1: binary/sigmoid; C: softmax)
  features      base width c_1 (doubled per level) or the channel list (c_1, ..., c_d)
  depth         number of resolution levels d (input divisible by 2^(d-1))
  batch_norm    BatchNorm after each convolution ("batch norm" in the tables)
  dropout       rate of the dropout after each convolution ("dropout after conv")
  upsample      'nearest' (nearest upsampling + conv) or 'transpose' (transposed conv)
  weight_init   'torch_default' | 'he_normal' | ... (``initializers.SCHEMES``)
  fan_mode      'fan_in' | 'fan_out' for he_normal
  in_channels   input channels c_0 expected (None: whatever ``init`` sees — the
                convolutions read c_0 from the input); a mismatch is a clear error
  dtype         compute dtype (params stay float32; logits are returned in float32)

Every model is called as ``model.apply(variables, x, train=...)`` with x NHWC.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.models.blocks import channel_list, check_divisible
from jaxseg.models.initializers import kernel_init
from jaxseg.registry import Registry

MODELS = Registry("model", option_word="option")  # name -> flax module class; ``@MODELS.register(name)`` on the class


class SegmentationModel(nn.Module):
    """Base class holding the shared options; subclasses define ``__call__(x, train)``."""

    num_classes: int = 1
    features: int | Sequence[int] = 64
    depth: int = 5
    batch_norm: bool = True
    dropout: float = 0.0
    upsample: str = "nearest"
    weight_init: str = "he_normal"
    fan_mode: str = "fan_in"
    in_channels: Optional[int] = None
    dtype: Any = jnp.float32

    @property
    def channels(self) -> tuple[int, ...]:
        return channel_list(self.features, self.depth)

    @property
    def norm(self) -> str:
        return "batch" if self.batch_norm else "none"

    @property
    def init_args(self) -> dict:
        """Initialisation and dtype arguments of every conv-bearing block."""
        return dict(weight_init=self.weight_init, fan_mode=self.fan_mode, dtype=self.dtype)

    def kernel_init(self):
        return kernel_init(self.weight_init, self.fan_mode)

    def prepare(self, x):
        """Checks the input's channels and H, W against the depth; casts to the compute dtype."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__}: expected an NHWC batch, got shape {x.shape}")
        if self.in_channels is not None and x.shape[-1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[-1]} channels, "
                             f"in_channels is {self.in_channels}")
        check_divisible(x.shape, self.depth - 1, type(self).__name__)
        return x.astype(self.dtype)
