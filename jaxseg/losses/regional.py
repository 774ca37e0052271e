"""Regional losses of thesis §5.2 (formulas pinned in docs/architecture.md).

Inputs are NHWC: ``logits`` (or probabilities with ``from_logits=False``) and
``labels`` in {0,1}, both of the same shape (N, H, W, C) — labels one-hot, not
an integer class map. Any other shape (no channel axis, NCHW, two different
shapes) raises ``ValueError`` naming both shapes, jitted or not. One channel
(C=1) is a binary sigmoid task whose classes are (background, foreground); C>1
channels are one-hot softmax classes.

Pixel-wise (thesis §5.2, Lin et al. 2017 for focal), mean over pixels and images,
sum over the classes i (for C=1 the two classes 1−y and y):

* CE       = −mean Σᵢ wᵢ · yᵢ · log ŷᵢ                  (``cross_entropy``, ``bce``,
                                                          ``weighted_bce``)
* focal    = −mean Σᵢ αᵢ · (1 − ŷᵢ)^γ · yᵢ · log ŷᵢ      (``focal``; γ=0 gives CE)

Soft confusion terms on probabilities ŷ ∈ [0,1] (thesis §5.2, Definition):
TP = yᵀŷ, FP = (1−y)ᵀŷ, FN = yᵀ(1−ŷ), per class, then

* Tversky  = 1 − (TP + ε) / (TP + α·FN + β·FP + ε)    (α weighs FN, β weighs FP)
* Dice     = 1 − (2TP + ε) / (2TP + FP + FN + ε)       (Tversky α=β=½, ε/2)
* Jaccard  = 1 − (TP + ε) / (TP + FP + FN + ε)         (Tversky α=β=1)
* focal Tversky = Tversky^γ                             (Abraham & Khan 2019)

``batchwise=True`` sums TP/FP/FN over the whole batch (thesis Table 5, "batchwise
loss"); ``False`` computes the ratio per image and averages over images. The loss
is averaged over classes; ``include_background=False`` drops channel 0 of a
multi-class (C>1) mask.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.losses.registry import LOSSES
from jaxseg.ops.shapes import check_nhwc

__all__ = ["probabilities", "soft_confusion", "cross_entropy", "bce", "weighted_bce", "focal",
           "tversky", "focal_tversky", "dice", "jaccard"]

_EPS = 1e-7


def probabilities(logits, from_logits: bool = True):
    """Class probabilities, float32: sigmoid (C=1), softmax over channels (C>1), or the input itself.

    ŷ = σ(z) for one channel, ŷᵢ = e^{zᵢ}/Σⱼ e^{zⱼ} otherwise (thesis §5.2).
    ``logits`` (N, H, W, C); other shapes raise ``ValueError`` (a missing channel
    axis would otherwise be read as classes).
    """
    check_nhwc("probabilities", logits=logits)
    x = logits.astype(jnp.float32)
    if not from_logits:
        return x
    return jax.nn.sigmoid(x) if x.shape[-1] == 1 else jax.nn.softmax(x, axis=-1)


def _log_probs_and_labels(logits, labels, from_logits: bool):
    """log ŷᵢ and yᵢ over explicit classes: C=1 becomes the two classes (1−y, y)."""
    x = logits.astype(jnp.float32)
    y = labels.astype(jnp.float32)
    if x.shape[-1] == 1:
        y = jnp.concatenate([1.0 - y, y], axis=-1)
        if from_logits:
            return jnp.concatenate([jax.nn.log_sigmoid(-x), jax.nn.log_sigmoid(x)], axis=-1), y
        x = jnp.concatenate([1.0 - x, x], axis=-1)
    elif from_logits:
        return jax.nn.log_softmax(x, axis=-1), y
    return jnp.log(jnp.clip(x, _EPS, 1.0)), y


def _class_weights(weights, n_classes: int):
    """Per-class weights of shape (n_classes,) from None, a scalar, or a sequence."""
    if weights is None:
        return jnp.ones((n_classes,), jnp.float32)
    w = jnp.asarray(weights, jnp.float32)
    if w.ndim == 0:
        return jnp.full((n_classes,), w)
    if w.shape != (n_classes,):
        raise ValueError(f"need {n_classes} class weights (C=1 counts as background, foreground); got {w.shape}")
    return w


@LOSSES.register("focal")
def focal(logits, labels, gamma: float = 2.0, alpha: float | Sequence[float] | None = None,
          from_logits: bool = True):
    """Focal loss −mean Σᵢ αᵢ (1 − ŷᵢ)^γ yᵢ log ŷᵢ (Lin et al. 2017; thesis §5.2).

    ``alpha``: None (all 1), per-class weights (C=1: (background, foreground)), or
    a scalar a — for C=1 the foreground gets a and the background 1 − a (Lin et
    al.'s α-balancing), for C>1 every class gets a. ``gamma=0`` is cross-entropy.
    """
    check_nhwc("focal", logits=logits, labels=labels)
    logp, y = _log_probs_and_labels(logits, labels, from_logits)
    n = y.shape[-1]
    if alpha is not None and np.ndim(alpha) == 0 and logits.shape[-1] == 1:
        alpha = (1.0 - alpha, alpha)
    w = _class_weights(alpha, n)
    modulator = 1.0 if gamma == 0 else (-jnp.expm1(logp)) ** gamma  # (1 − ŷ)^γ
    return -jnp.mean(jnp.sum(w * modulator * y * logp, axis=-1))


@LOSSES.register("cross_entropy")
def cross_entropy(logits, labels, class_weights: Sequence[float] | None = None, from_logits: bool = True):
    """(Weighted) cross-entropy −mean Σᵢ wᵢ yᵢ log ŷᵢ (thesis §5.2, L_CE / L_WCE).

    Multi-class (C>1, softmax) or binary (C=1, classes (background, foreground)).
    """
    check_nhwc("cross_entropy", logits=logits, labels=labels)
    return focal(logits, labels, gamma=0.0, alpha=class_weights, from_logits=from_logits)


@LOSSES.register("bce")
def bce(logits, labels, from_logits: bool = True):
    """Binary cross-entropy −mean(y log ŷ + (1−y) log(1−ŷ)) (thesis §5.2, L_CE with C=2)."""
    check_nhwc("bce", logits=logits, labels=labels)
    return cross_entropy(logits, labels, from_logits=from_logits)


@LOSSES.register("weighted_bce")
def weighted_bce(logits, labels, pos_weight: float = 0.5, neg_weight: float | None = None,
                 from_logits: bool = True):
    """Weighted BCE −mean(w₊ y log ŷ + w₋ (1−y) log(1−ŷ)) (thesis §5.2, L_WCE; Table 8).

    ``neg_weight`` defaults to 1 − ``pos_weight``, so Table 8's "weight of positive
    examples: 0.7" is 0.7 on foreground and 0.3 on background pixels. (PyTorch's
    ``BCEWithLogitsLoss(pos_weight=p)`` is ``pos_weight=p, neg_weight=1``.)
    """
    check_nhwc("weighted_bce", logits=logits, labels=labels)
    neg = 1.0 - pos_weight if neg_weight is None else neg_weight
    return cross_entropy(logits, labels, class_weights=(neg, pos_weight), from_logits=from_logits)


def soft_confusion(probs, labels, batchwise: bool):
    """Soft TP = Σ y·ŷ, FP = Σ (1−y)·ŷ, FN = Σ y·(1−ŷ) (thesis §5.2, Definition).

    ``probs``, ``labels`` (N, H, W, C). Sums over pixels (and the batch if
    ``batchwise``): shapes (C,) or (N, C).
    """
    check_nhwc("soft_confusion", probs=probs, labels=labels)
    axes = (0, 1, 2) if batchwise else (1, 2)
    labels = labels.astype(jnp.float32)
    tp = jnp.sum(probs * labels, axis=axes)
    fp = jnp.sum(probs * (1.0 - labels), axis=axes)
    fn = jnp.sum((1.0 - probs) * labels, axis=axes)
    return tp, fp, fn


def _tversky_per_class(logits, labels, alpha, beta, smooth, from_logits, batchwise, include_background):
    """1 − (TP+ε)/(TP+αFN+βFP+ε) per class (and per image unless batchwise)."""
    tp, fp, fn = soft_confusion(probabilities(logits, from_logits), labels, batchwise)
    loss = 1.0 - (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    if not include_background and logits.shape[-1] > 1:
        loss = loss[..., 1:]
    return loss


@LOSSES.register("tversky")
def tversky(logits, labels, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0,
            from_logits: bool = True, batchwise: bool = False, include_background: bool = True):
    """Tversky loss 1 − (TP + ε)/(TP + α·FN + β·FP + ε) (Salehi et al. 2017; thesis §5.2).

    α weighs false negatives, β false positives; averaged over classes and images.
    """
    check_nhwc("tversky", logits=logits, labels=labels)
    return jnp.mean(_tversky_per_class(logits, labels, alpha, beta, smooth, from_logits, batchwise,
                                       include_background))


@LOSSES.register("focal_tversky")
def focal_tversky(logits, labels, alpha: float = 0.5, beta: float = 0.5, gamma: float = 2.0,
                  smooth: float = 1.0, from_logits: bool = True, batchwise: bool = False,
                  include_background: bool = True):
    """Focal Tversky loss Tversky^γ per class/image, averaged (Abraham & Khan 2019; docs/architecture.md).

    Defaults follow thesis Table 5 (α=β=0.5, "focal gamma" 2).
    """
    check_nhwc("focal_tversky", logits=logits, labels=labels)
    t = _tversky_per_class(logits, labels, alpha, beta, smooth, from_logits, batchwise, include_background)
    # Tversky ∈ [0, 1]; the floor keeps the gradient finite for γ < 1 at a perfect fit.
    return jnp.mean(jnp.maximum(t, 1e-12) ** gamma)


@LOSSES.register("dice")
def dice(logits, labels, smooth: float = 1.0, from_logits: bool = True, batchwise: bool = False,
         include_background: bool = True):
    """Soft Dice loss 1 − (2TP + ε)/(2TP + FP + FN + ε) (Milletari et al. 2016; thesis §5.2)."""
    check_nhwc("dice", logits=logits, labels=labels)
    return tversky(logits, labels, 0.5, 0.5, smooth / 2.0, from_logits, batchwise, include_background)


@LOSSES.register("jaccard")
def jaccard(logits, labels, smooth: float = 1.0, from_logits: bool = True, batchwise: bool = False,
            include_background: bool = True):
    """Soft Jaccard loss 1 − (TP + ε)/(TP + FP + FN + ε) (thesis §5.2)."""
    check_nhwc("jaccard", logits=logits, labels=labels)
    return tversky(logits, labels, 1.0, 1.0, smooth, from_logits, batchwise, include_background)
