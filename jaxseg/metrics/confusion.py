"""Confusion-matrix metrics of thesis §5.1 at threshold δ.

T_δ(ŷ)_i = 1 if ŷ_i > δ else 0;  TP = yᵀT_δ(ŷ), FP = (1−y)ᵀT_δ(ŷ),
FN = yᵀ(1−T_δ(ŷ)), TN = (1−y)ᵀ(1−T_δ(ŷ)).
DSC = 2TP/(2TP+FP+FN), Jaccard = TP/(TP+FP+FN).
Empty-mask rule (DESIGN.md): both prediction and label empty → 1.
"""

from __future__ import annotations

import jax.numpy as jnp


def confusion_counts(probs, labels, threshold: float = 0.5, valid=None):
    """Per-image, per-class counts (TP, FP, FN, TN), each of shape (N, C), float32.

    ``valid`` (N,) zeroes padded images of the last evaluation batch.
    """
    pred = (probs > threshold).astype(jnp.float32)
    y = labels.astype(jnp.float32)
    if valid is not None:
        w = valid.astype(jnp.float32)[:, None, None, None]
        pred, y, neg = pred * w, y * w, w
    else:
        neg = 1.0
    tp = jnp.sum(pred * y, axis=(1, 2))
    fp = jnp.sum(pred * (neg - y), axis=(1, 2))
    fn = jnp.sum((neg - pred) * y, axis=(1, 2))
    tn = jnp.sum((neg - pred) * (neg - y), axis=(1, 2))
    return tp, fp, fn, tn


def _ratio(num, den):
    """num/den with the empty rule 0/0 → 1."""
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 1.0)


def dice_score(tp, fp, fn):
    """DSC = 2TP / (2TP + FP + FN); 1 when both masks are empty."""
    return _ratio(2.0 * tp, 2.0 * tp + fp + fn)


def jaccard_score(tp, fp, fn):
    """Jaccard = TP / (TP + FP + FN); 1 when both masks are empty."""
    return _ratio(tp, tp + fp + fn)
