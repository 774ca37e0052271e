"""UNet++ (Zhou et al. 2018, thesis [36], §4.3.3): a U-Net with nested, dense skip connections.

Nodes X^{i,j}, level i = 0..d−1 (resolution /2^i), column j = 0..d−1−i:
  X^{i,0} = the encoder (as in U-Net):  B(P(X^{i−1,0})),
  X^{i,j} = B_{·,c_i}( [X^{i,0}, X^{i,1}, ..., X^{i,j−1}, U(X^{i+1,j−1})] ),  j ≥ 1,
[·] the channel concatenation, U the upconvolution (``UpConv``), B the ConvBlock.
The output head is a 1×1 convolution on X^{0,d−1}; with deep supervision there
is one head on every X^{0,j}, j = 1..d−1.

Deep supervision: in training (``train=True``) the model returns the stacked head
logits, shape (d−1, N, H, W, C); ``deep_supervision_loss(loss)`` averages any loss
over them. In evaluation it returns one (N, H, W, C) array: the last head
(``ds_eval='last'``, Zhou et al.'s pruned "fast" mode uses an earlier one) or the
mean of the heads' logits (``ds_eval='mean'``, their "accurate" mode). All head
logits are also sown into ``intermediates/heads``.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.models.backbone import Encoder, Head
from jaxseg.models.base import MODELS, SegmentationModel
from jaxseg.models.blocks import ConvBlock, Downsample, UpConv


@MODELS.register("unetpp")
class UNetPlusPlus(SegmentationModel):
    """UNet++ (Zhou et al. 2018): nested dense skips; optional deep-supervision heads.

    ``block`` — ConvBlock kind of every node (default 'double', as in the paper);
    ``deep_supervision`` — heads on every X^{0,j}; ``ds_eval`` — 'last' | 'mean'.
    """

    block: str = "double"
    num_convs: int = 2
    deep_supervision: bool = False
    ds_eval: str = "last"

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = self.prepare(x)
        if self.ds_eval not in ("last", "mean"):
            raise ValueError(f"ds_eval must be 'last' or 'mean', got {self.ds_eval!r}")
        chans, depth = self.channels, self.depth
        block = functools.partial(ConvBlock, kind=self.block, num_convs=self.num_convs, norm=self.norm,
                                  dropout=self.dropout, **self.init_args)
        up = functools.partial(UpConv, mode=self.upsample, norm=self.norm, **self.init_args)
        column = Encoder(chans, block, functools.partial(Downsample, mode="max", **self.init_args),
                         name="encoder")(x, train)
        nodes = {(i, 0): f for i, f in enumerate(column)}
        for j in range(1, depth):
            for i in range(depth - j):
                u = up(chans[i], name=f"up{i}_{j}")(nodes[(i + 1, j - 1)], train)
                cat = jnp.concatenate([nodes[(i, k)] for k in range(j)] + [u], axis=-1)
                nodes[(i, j)] = block(chans[i], name=f"x{i}_{j}")(cat, train)
        top = [nodes[(0, j)] for j in range(1, depth)] or [nodes[(0, 0)]]
        if not self.deep_supervision:
            return Head(self.num_classes, self.kernel_init(), self.dtype, name="head")(top[-1])
        heads = jnp.stack([Head(self.num_classes, self.kernel_init(), self.dtype, name=f"head{j + 1}")(t)
                           for j, t in enumerate(top)])
        self.sow("intermediates", "heads", heads)
        if train:
            return heads
        return heads[-1] if self.ds_eval == "last" else jnp.mean(heads, axis=0)


def deep_supervision_loss(loss_fn: Callable, weights: Optional[Sequence[float]] = None) -> Callable:
    """Wraps ``loss_fn(logits, *args, **kwargs)`` so stacked head logits (ndim 5,
    heads first) give the (weighted) mean of the per-head losses:

        L = Σ_k w_k · loss_fn(logits[k], ...) / Σ_k w_k        (w_k = 1 by default)

    Logits of ndim ≤ 4 pass straight through, so wrapping is harmless for any model.
    Works for array losses (``dice(logits, labels)``) and for the trainer's
    ``loss_fn(logits, batch, epoch) -> (loss, aux)`` alike (every output leaf is averaged).
    """

    @functools.wraps(loss_fn)
    def wrapped(logits, *args, **kwargs):
        if logits.ndim <= 4:
            return loss_fn(logits, *args, **kwargs)
        k = logits.shape[0]
        w = [1.0] * k if weights is None else [float(v) for v in weights]
        if len(w) != k:
            raise ValueError(f"deep_supervision_loss: {len(w)} weights for {k} heads")
        outs = [loss_fn(logits[i], *args, **kwargs) for i in range(k)]
        total = sum(w)
        return jax.tree_util.tree_map(lambda *v: sum(wi * vi for wi, vi in zip(w, v)) / total, *outs)

    return wrapped
