"""TransUNet-style model (Chen et al. 2021, thesis [12], §4.4): a transformer encoder on the
bottleneck tokens of a convolutional U-Net.

  x^{(1..d)} = the U-Net encoder (convolutional blocks and pooling)
  z₀  = E x^{(d)} + p               1×1 "patch" embedding to D channels (patch size 1 on the
                                     CNN feature map, as in TransUNet's hybrid encoder),
                                     learned position embedding p
  z_l = z'_l + MLP(LN(z'_l)),  z'_l = z_{l−1} + MSA(LN(z_{l−1})),   l = 1..L   (pre-LN ViT)
  x^{(d)} ← C_{D,c_d}(LN(z_L))       reshaped to the grid, 3×3 ConvNormAct back to c_d
  then the U-Net decoder (cascaded upsampler with skips) and the 1×1 head.

TransUNet uses a ResNet-50 CNN and ViT-B (D = 768, L = 12); here the CNN is the
U-Net encoder and D defaults to c_d. The position embedding is a (h, w, D) grid
learned at the size seen at ``init`` and resized bilinearly for other sizes.
"""

from __future__ import annotations

import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.models.backbone import Decoder, Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import ConvBlock, ConvNormAct, Downsample, UpConv


class TransformerLayer(nn.Module):
    """Pre-LN transformer encoder layer (Vaswani et al. 2017; ViT, Dosovitskiy et al. 2021):
    z' = z + MSA(LN(z)); z'' = z' + W₂ GELU(W₁ LN(z')), MLP width ``mlp_dim``."""

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z, train: bool):
        init = nn.initializers.xavier_uniform()
        h = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype)(z)
        h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, dtype=self.dtype, kernel_init=init,
                                            dropout_rate=self.dropout, deterministic=not train)(h, h)
        if self.dropout > 0:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        z = z + h
        h = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype)(z)
        h = nn.Dense(self.mlp_dim, kernel_init=init, dtype=self.dtype)(h)
        h = nn.gelu(h)
        h = nn.Dense(z.shape[-1], kernel_init=init, dtype=self.dtype)(h)
        if self.dropout > 0:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return z + h


class BottleneckTransformer(nn.Module):
    """Tokens of the (N, h, w, C) map → embedding, position, L layers, LN → (N, h, w, D)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        n, h, w, _ = x.shape
        d = self.hidden_size
        if d % self.num_heads:
            raise ValueError(f"hidden_size {d} is not divisible by num_heads {self.num_heads}")
        z = nn.Dense(d, dtype=self.dtype, name="embedding")(x)
        if self.has_variable("params", "position"):  # its grid is the one seen at init
            pos = self.get_variable("params", "position")
        else:
            pos = self.param("position", nn.initializers.normal(0.02), (h, w, d))
        if pos.shape[:2] != (h, w):
            pos = jax.image.resize(pos, (h, w, d), method="bilinear")
        z = (z + pos.astype(z.dtype)).reshape(n, h * w, d)
        if self.dropout > 0:
            z = nn.Dropout(self.dropout, deterministic=not train)(z)
        for i in range(self.num_layers):
            z = TransformerLayer(self.num_heads, self.mlp_dim, self.dropout, self.dtype,
                                 name=f"layer{i}")(z, train)
        z = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="encoder_norm")(z)
        return z.reshape(n, h, w, d)


@MODELS.register("transunet")
class TransUNet(SegmentationModel):
    """TransUNet-style U-Net (Chen et al. 2021): transformer encoder on the bottleneck tokens.

    ``hidden_size`` D (None = c_d), ``num_layers`` L, ``num_heads``, ``mlp_ratio``
    (MLP width = mlp_ratio·D). Dropout ``dropout`` also acts in the transformer.
    """

    hidden_size: Optional[int] = None
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.prepare(x)
        chans = self.channels
        block = functools.partial(ConvBlock, kind="double", norm=self.norm, dropout=self.dropout,
                                  **self.init_args)
        skips = Encoder(chans, block, functools.partial(Downsample, mode="max", **self.init_args),
                        name="encoder")(x, train)
        d = self.hidden_size or chans[-1]
        z = BottleneckTransformer(d, self.num_layers, self.num_heads, self.mlp_ratio * d, self.dropout,
                                  self.dtype, name="transformer")(skips[-1], train)
        z = ConvNormAct(chans[-1], norm=self.norm, **self.init_args, name="reshape_conv")(z, train)
        up = functools.partial(UpConv, mode=self.upsample, norm=self.norm, **self.init_args)
        y = Decoder(chans, block, up, name="decoder")(list(skips[:-1]) + [z], train)
        return Head(self.num_classes, self.kernel_init(), self.dtype, name="head")(y)
