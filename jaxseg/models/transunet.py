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

``encoder='r50_vit_b16'`` is the paper's own network instead (``encoders.r50_vit`` and
``hybrid_forward``): the R50-ViT-B/16 hybrid encoder (variables under 'encoder', loadable from the
paper's ``R50+ViT-B_16.npz`` or timm's ``vit_base_r50_s16_224``) and TransUNet's cascaded upsampler
("DecoderCup", Beckschen/TransUNet ``vit_seg_modeling.py``):

  y = C_512(z)                                   3×3 conv (768 → 512) + BN + ReLU, stride 16
  y ← C_{d_k}(C_{d_k}(U(y) | s_k)),  k = 1..4    d = 256, 128, 64, 16; U: 2× bilinear upsampling
                                                  with aligned corners (torch's UpsamplingBilinear2d);
                                                  s = the stride-8, 4, 2 maps, none at full resolution
  logits = 3×3 conv (16 → classes)               the reference's SegmentationHead
C: 3×3 conv + BN (``batch_norm``; without it the conv has a bias) + ReLU. ``dropout`` acts in the
transformer (embedding and MLP, ViT's dropout_rate); the ViT-B sizes are fixed (the weights'),
so ``hidden_size``, ``num_layers``, ``num_heads``, ``mlp_ratio``, ``features`` and ``depth`` do not
apply. H and W must be divisible by 16.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.models.backbone import Decoder, Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import ConvBlock, ConvNormAct, Downsample, UpConv
from jaxseg.models.encoders import r50_vit

ENCODERS = (r50_vit.NAME,)
DECODER_FEATURES = (256, 128, 64, 16)  # TransUNet's decoder_channels
HEAD_FEATURES = 512


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
    ``encoder``: None (this network) or 'r50_vit_b16' (the paper's network, ``hybrid_forward``).
    """

    hidden_size: Optional[int] = None
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4
    encoder: Optional[str] = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.encoder is not None:
            return hybrid_forward(self, x, train)
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


class DecoderCup(nn.Module):
    """TransUNet's cascaded upsampler (module docstring): ``features`` d_1..d_4 after conv_more."""

    features: Sequence[int] = DECODER_FEATURES
    norm: str = "batch"
    init_args: tuple = ()

    @nn.compact
    def __call__(self, z, skips: Sequence, train: bool):
        conv = functools.partial(ConvNormAct, norm=self.norm, **dict(self.init_args))
        y = conv(HEAD_FEATURES, name="conv_more")(z, train)
        for k, c in enumerate(self.features):
            y = r50_vit.resize_linear(y, (2 * y.shape[1], 2 * y.shape[2]))
            if k < len(skips):
                y = jnp.concatenate([y, skips[k].astype(y.dtype)], axis=-1)
            y = conv(c, name=f"block{k + 1}_conv1")(y, train)
            y = conv(c, name=f"block{k + 1}_conv2")(y, train)
        return y


def hybrid_forward(model: TransUNet, x, train: bool):
    """Logits of TransUNet on the R50-ViT-B/16 encoder; its submodules are the model's:
    'encoder' (``r50_vit.R50ViT``), 'decoder' (``DecoderCup``), 'head' (3×3 conv)."""
    if model.encoder not in ENCODERS:
        raise ValueError(f"TransUNet: unknown encoder {model.encoder!r}; it takes {', '.join(ENCODERS)} "
                         "(or None: the TransUNet-style network on the U-Net encoder)")
    name = f"{type(model).__name__}"
    r50_vit.check_input(x.shape, name)
    if model.in_channels is not None and x.shape[-1] != model.in_channels:
        raise ValueError(f"{name}: input has {x.shape[-1]} channels, in_channels is {model.in_channels}")
    *skips, z = r50_vit.R50ViT(model.dropout, model.dtype, name="encoder")(x.astype(model.dtype), train)
    y = DecoderCup(DECODER_FEATURES, model.norm, tuple(sorted(model.init_args.items())),
                   name="decoder")(z, skips[::-1], train)
    logits = nn.Conv(model.num_classes, (3, 3), padding=((1, 1), (1, 1)), kernel_init=model.kernel_init(),
                     dtype=model.dtype, name="head")(y)
    return logits.astype(jnp.float32)
