"""The U-Net family of thesis §4.3: one encoder-decoder skeleton, its parts chosen by options.

UNet = C_{c_1,classes} ∘ f_up ∘ f_down (thesis §4.3.1), with
  f_down = ∘_{j=2..d} (B_{c_{j-1},c_j} ∘ P) ∘ B_{c_0,c_1}
  f_up   = ∘_{j=d-1..1} (B_{2c_j,c_j} ∘ Agg_j),   Agg_j(y) = (S_j(x^{(j)}, y) | U_{c_{j+1},c_j}(y)).
The variants change B (``block``) and the skip S (``attention``):

  name         class                   B            S
  unet         UNet                    double       identity      Ronneberger et al. 2015
  attunet      AttentionUNet           double       attention     Oktay et al. 2018
  resunet      ResidualUNet            residual     identity      Zhang et al. 2018; cf. [14]
  resattunet   ResidualAttentionUNet   residual     attention     Chen, Yao & Zhang 2020
  r2unet       R2UNet                  recurrent    identity      Alom et al. 2018

The final 1×1 convolution returns logits (no activation), float32.

``encoder`` (a name of ``encoders.names()``: resnet18/34/50, convnext_tiny) replaces f_down by
a pretrained-weight encoder and the decoder by smp's Unet decoder with the family's block and
skip (``encoder_unet``); ``features`` and ``depth`` then do not apply (the decoder's widths are
``decoder_features``). None (the default) is the thesis's network, unchanged.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn

from jaxseg.models import encoder_unet
from jaxseg.models.backbone import Decoder, Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import AttentionGate, ConvBlock, Downsample, UpConv


@MODELS.register("unet")
class UNet(SegmentationModel):
    """U-Net (Ronneberger et al. 2015, thesis §4.3.1), and the skeleton of its variants.

    Besides the shared options (``base.py``): ``block`` — the ConvBlock kind
    ('double' | 'residual' | 'recurrent' | 'convnext'); ``num_convs`` — convolutions
    (or recurrent layers) per block; ``recurrence`` — t of R2U-Net's recurrent layers;
    ``attention`` — attention gates on the skips (thesis §4.3.2); ``downsample`` —
    'max' (2×2 max pooling) or 'conv' (strided convolution); ``encoder`` — a pretrained-weight
    encoder's name (``encoder_unet``; None: the thesis's encoder); ``decoder_features`` — with an
    encoder, the 5 decoder widths, deepest first (None: smp's 256, 128, 64, 32, 16).
    """

    block: str = "double"
    num_convs: int = 2
    recurrence: int = 2
    attention: bool = False
    downsample: str = "max"
    encoder: Optional[str] = None
    decoder_features: Optional[Sequence[int]] = None

    def conv_block(self):
        return functools.partial(ConvBlock, kind=self.block, num_convs=self.num_convs,
                                 recurrence=self.recurrence, norm=self.norm, dropout=self.dropout,
                                 **self.init_args)

    def plain_encoder(self):
        return Encoder(self.channels, self.conv_block(),
                       functools.partial(Downsample, mode=self.downsample, norm=self.norm, **self.init_args),
                       name="encoder")

    def plain_decoder(self):
        gate = (functools.partial(AttentionGate, norm=self.norm, **self.init_args)
                if self.attention else None)
        up = functools.partial(UpConv, mode=self.upsample, norm=self.norm, **self.init_args)
        return Decoder(self.channels, self.conv_block(), up, gate, name="decoder")

    def head(self):
        return Head(self.num_classes, self.kernel_init(), self.dtype, name="head")

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.encoder is not None:
            return encoder_unet.forward(self, x, train)
        x = self.prepare(x)
        return self.head()(self.plain_decoder()(self.plain_encoder()(x, train), train))


@MODELS.register("attunet")
class AttentionUNet(UNet):
    """Attention U-Net (Oktay et al. 2018, thesis §4.3.2): the U-Net with every skip x^{(i)}
    multiplied by attention coefficients α = Resample(σ(ψ ReLU(W_x x + W_g GS(y)))) computed
    from the skip and the lower-level decoder data y (``blocks.AttentionGate``);
    AttAgg_i(y) = (AB_i(y) | U(y)). The α maps are sown into ``intermediates``."""

    attention: bool = True


@MODELS.register("resunet")
class ResidualUNet(UNet):
    """Residual U-Net (Zhang, Liu & Wang 2018; the residual-unit idea of ResUNet-a,
    Diakogiannis et al. 2020, thesis [14]): the U-Net with every block a residual block
    B(x) = ReLU(S(x) + N(conv(ReLU(N(conv(x)))))), S a 1×1 conv + norm when widths differ."""

    block: str = "residual"


@MODELS.register("resattunet")
class ResidualAttentionUNet(UNet):
    """Residual Attention U-Net (Chen, Yao & Zhang 2020, thesis [13]; Table 6's model):
    residual blocks (as ``ResidualUNet``) and attention-gated skips (as ``AttentionUNet``)."""

    block: str = "residual"
    attention: bool = True


@MODELS.register("r2unet")
class R2UNet(UNet):
    """R2U-Net (Alom et al. 2018, thesis [5]): the U-Net with recurrent residual blocks,
    B(x) = x' + R(R(x')), x' = conv₁ₓ₁(x), R(z): h₀ = C(z), h_k = C(z + h_{k−1}), k = 1..t
    (t = ``recurrence`` = 2, weights of C shared over the steps)."""

    block: str = "recurrent"
