"""Fully convolutional network of thesis §4.2 (Long, Shelhamer & Darrell 2015, FCN-8s style).

Downgoing part, with C_{a,b} a convolutional block (``num_convs`` ConvNormAct's):
  x^{(1)} = C_{c_0,c_1}(x),  x^{(i)} = C_{c_{i-1},c_i}(P(x^{(i-1)})),  i = 2..d
  f_down  = C_{c_d,classes} ∘ f_d                     (1×1 conv: one map per class)
Upgoing part, T = T_{classes,classes} a stride-2 transposed convolution:
  f_up = T ∘ ⊕_2 ∘ T ∘ ⊕_3 ∘ ... ∘ ⊕_{d-1} ∘ T,      ⊕_i(y) = y + S_i(x^{(i)})
  FCN  = f_up ∘ f_down
S_i is a 1×1 "score" convolution c_i → classes, so the summed skip has the class
maps' width (FCN-8s's score_pool layers; the thesis writes y + x^{(i)}). There are
d−1 transposed convolutions (k×k, k = ``up_kernel`` = 4, initialised to bilinear
interpolation as in FCN) and skips from every level 2..d−1. FCN-8s itself stops
adding skips at stride 8 and then upsamples 8× in one step; the thesis's chain keeps
2× steps and a skip at every level but the first.
"""

from __future__ import annotations

import functools

import flax.linen as nn

from jaxseg.models.backbone import Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import ConvBlock, Downsample, UpConv


@MODELS.register("fcn")
class FCN(SegmentationModel):
    """FCN (Long et al. 2015; thesis §4.2): conv/pool chain, per-class maps, and
    transposed-convolution upsampling with summed (scored) skips.

    ``upsample='transpose'`` (default) is the FCN of the paper; 'nearest' replaces each
    T by nearest upsampling + a 3×3 convolution on the class maps. ``num_convs`` —
    convolutions per level (VGG uses 2-3).
    """

    upsample: str = "transpose"
    num_convs: int = 2
    up_kernel: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.prepare(x)
        chans = self.channels
        block = functools.partial(ConvBlock, kind="double", num_convs=self.num_convs, norm=self.norm,
                                  dropout=self.dropout, **self.init_args)
        skips = Encoder(chans, block, functools.partial(Downsample, mode="max", **self.init_args),
                        name="encoder")(x, train)
        y = Head(self.num_classes, self.kernel_init(), self.dtype, name="score")(skips[-1]).astype(self.dtype)
        up = functools.partial(UpConv, self.num_classes, mode=self.upsample,
                               kernel_size=self.up_kernel if self.upsample == "transpose" else 3,
                               norm="none", activation=None, transpose_init="bilinear", **self.init_args)
        for level in range(self.depth - 2, -1, -1):  # 0-based index of the level upsampled to
            y = up(name=f"up{level + 1}")(y, train)
            if level >= 1:
                y = y + Head(self.num_classes, self.kernel_init(), self.dtype,
                             name=f"score{level + 1}")(skips[level]).astype(self.dtype)
        return y.astype("float32")
