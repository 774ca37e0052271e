"""ConvNeXt U-Net: the thesis's future-research question (§7) — do the ConvNeXt design
changes (Liu et al. 2022, "A ConvNet for the 2020s", thesis [24]) carry over to a
convolutional segmentation network?

The U-Net skeleton (thesis §4.3.1) with ConvNeXt's micro and macro design:
  stem      k×k convolution to c_1 + norm, no activation (a full-resolution "patchify")
  B         ConvNeXt blocks, y = x + γ ⊙ W₂ GELU(W₁ LN(DWConv₇ₓ₇(x)))   (``ConvNeXtBlock``):
            depthwise 7×7 conv, LayerNorm, inverted bottleneck (×4), GELU, layer scale γ
  D         separate downsampling layers: norm then a 2×2 stride-2 conv c_{i−1} → c_i
  decoder   U-Net's: upsample (``upsample``: 2×2 transposed conv by default), concatenate
            the skip, 1×1 projection 2c_i → c_i, ConvNeXt blocks
  head      1×1 convolution to the class logits.
ConvNeXt blocks always use LayerNorm; ``batch_norm`` picks the norm of the stem,
downsampling and up-convolution layers (False, the default here: LayerNorm as in
ConvNeXt; True: BatchNorm).
"""

from __future__ import annotations

import functools

import flax.linen as nn

from jaxseg.models.backbone import Decoder, Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import ConvBlock, ConvNormAct, Downsample, UpConv


@MODELS.register("convnext_unet")
class ConvNeXtUNet(SegmentationModel):
    """ConvNeXt U-Net (ConvNeXt blocks of Liu et al. 2022 in a U-Net, Ronneberger et al. 2015).

    ``blocks_per_level`` — ConvNeXt blocks in each encoder/decoder level;
    ``stem_kernel`` — kernel of the stem convolution.
    """

    batch_norm: bool = False
    upsample: str = "transpose"
    blocks_per_level: int = 2
    stem_kernel: int = 3

    @property
    def norm(self) -> str:
        return "batch" if self.batch_norm else "layer"

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.prepare(x)
        chans = self.channels
        x = ConvNormAct(chans[0], kernel_size=self.stem_kernel, norm=self.norm, activation=None,
                        **self.init_args, name="stem")(x, train)
        block = functools.partial(ConvBlock, kind="convnext", num_convs=self.blocks_per_level,
                                  dropout=self.dropout, **self.init_args)
        down = functools.partial(Downsample, mode="conv", norm=self.norm, **self.init_args)
        up = functools.partial(UpConv, mode=self.upsample, norm=self.norm, activation=nn.gelu,
                               **self.init_args)
        skips = Encoder(chans, block, down, name="encoder")(x, train)
        y = Decoder(chans, block, up, name="decoder")(skips, train)
        return Head(self.num_classes, self.kernel_init(), self.dtype, name="head")(y)
