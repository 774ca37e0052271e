"""Confusion-matrix metrics of thesis §5.1 at threshold δ.

T_δ(ŷ)_i = 1 if ŷ_i > δ else 0;  TP = yᵀT_δ(ŷ), FP = (1−y)ᵀT_δ(ŷ),
FN = yᵀ(1−T_δ(ŷ)), TN = (1−y)ᵀ(1−T_δ(ŷ))  (thesis §5.1).

Scores from the counts (thesis §5.1; precision/recall/specificity/balanced
accuracy as in scikit-learn):
  DSC = 2TP/(2TP+FP+FN)      Jaccard = TP/(TP+FP+FN)
  precision = TP/(TP+FP)     recall = TP/(TP+FN)     specificity = TN/(TN+FP)
  balanced accuracy = (recall + specificity)/2

Empty-set rule (docs/architecture.md, one rule for every ratio): a ratio whose two sets
are both empty is 1, with exactly one empty it is 0 — e.g. Dice of an empty
prediction on an empty label is 1; precision with nothing predicted is 1 if
the label is empty too, else 0. No score is NaN.

Shapes (docs/architecture.md, NHWC): ``probs`` and ``labels`` are (N, H, W, C),
one channel per class; counts are (N, C). The score functions take counts of
one common shape (any); a mismatch raises ``ValueError`` naming both shapes
instead of broadcasting.

Multi-class masks (C > 1 channels) are scored one-vs-rest per channel;
:func:`average_scores` gives the macro average (mean over classes), the micro
average (the score of the counts summed over classes) or per-class values.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from jaxseg.ops.shapes import check_batch, check_nhwc, check_same_shape, shape_error


def _check_counts(fn, tp, fp, fn_, tn=None):
    check_same_shape(fn, "", None, tp=tp, fp=fp, fn=fn_, tn=tn)


def confusion_counts(probs, labels, threshold: float = 0.5, valid=None):
    """Per-image, per-class counts (TP, FP, FN, TN), each of shape (N, C).

    ``probs`` (N, H, W, C) in [0, 1]; ``labels`` (N, H, W, C) in {0, 1};
    a pixel is predicted positive when ``probs > threshold`` (thesis's T_δ).
    ``valid`` (N,) bool zeroes the padded images of the last evaluation batch.
    Counts are int32 (exact up to 2³¹ pixels, unlike float32 sums). Other shapes
    raise ``ValueError`` naming both.
    """
    check_nhwc("confusion_counts", probs=probs, labels=labels)
    check_batch("confusion_counts", valid, probs=probs)
    pred = probs > threshold
    y = labels > 0.5
    if valid is not None:
        w = jnp.asarray(valid, bool)[:, None, None, None]
        pred_neg, y_neg = ~pred & w, ~y & w
        pred, y = pred & w, y & w
    else:
        pred_neg, y_neg = ~pred, ~y

    def count(a, b):
        return jnp.sum(a & b, axis=(1, 2), dtype=jnp.int32)

    return count(pred, y), count(pred, y_neg), count(pred_neg, y), count(pred_neg, y_neg)


def _ratio(num, den, other):
    """``num/den``; when ``den == 0``: 1 if ``other == 0`` (both sets empty) else 0."""
    num, den, other = (jnp.asarray(v, jnp.float32) for v in (num, den, other))
    safe = jnp.where(den > 0, den, 1.0)
    return jnp.where(den > 0, num / safe, jnp.where(other > 0, 0.0, 1.0))


def dice_score(tp, fp, fn, tn=None):
    """DSC = 2TP / (2TP + FP + FN) (thesis §5.1); 1 when both masks are empty."""
    _check_counts("dice_score", tp, fp, fn, tn)
    return _ratio(2.0 * jnp.asarray(tp, jnp.float32), 2.0 * jnp.asarray(tp, jnp.float32) + fp + fn, 0)


def jaccard_score(tp, fp, fn, tn=None):
    """Jaccard = TP / (TP + FP + FN) (thesis §5.1); 1 when both masks are empty."""
    _check_counts("jaccard_score", tp, fp, fn, tn)
    return _ratio(tp, jnp.asarray(tp, jnp.float32) + fp + fn, 0)


def precision_score(tp, fp, fn, tn=None):
    """Precision = TP / (TP + FP) (thesis §5.1); nothing predicted: 1 if FN = 0 else 0."""
    _check_counts("precision_score", tp, fp, fn, tn)
    return _ratio(tp, jnp.asarray(tp, jnp.float32) + fp, fn)


def recall_score(tp, fp, fn, tn=None):
    """Recall (TPR, sensitivity) = TP / (TP + FN) (thesis §5.1); empty label: 1 if FP = 0 else 0."""
    _check_counts("recall_score", tp, fp, fn, tn)
    return _ratio(tp, jnp.asarray(tp, jnp.float32) + fn, fp)


def specificity_score(tp, fp, fn, tn):
    """Specificity (TNR) = TN / (TN + FP); label covers everything: 1 if FN = 0 else 0."""
    _check_counts("specificity_score", tp, fp, fn, tn)
    return _ratio(tn, jnp.asarray(tn, jnp.float32) + fp, fn)


def balanced_accuracy_score(tp, fp, fn, tn):
    """Balanced accuracy = (recall + specificity) / 2 (scikit-learn's definition, binary case)."""
    _check_counts("balanced_accuracy_score", tp, fp, fn, tn)
    return 0.5 * (recall_score(tp, fp, fn) + specificity_score(tp, fp, fn, tn))


SCORES: dict[str, Callable] = {
    "dice": dice_score,
    "jaccard": jaccard_score,
    "precision": precision_score,
    "recall": recall_score,
    "specificity": specificity_score,
    "balanced_accuracy": balanced_accuracy_score,
}


def average_scores(score_fn: Callable, counts, average: str = "macro"):
    """Scores of per-class counts ``counts`` (..., C, 4) = (TP, FP, FN, TN) along the last axis.

    ``average='macro'``: mean over classes of the per-class scores;
    ``'micro'``: the score of the counts summed over classes;
    ``'none'``: the per-class scores, shape (..., C).
    """
    if len(jnp.shape(counts)) < 2 or jnp.shape(counts)[-1] != 4:
        raise shape_error("average_scores", "must have shape (..., C, 4)", counts=counts)
    tp, fp, fn, tn = (counts[..., i] for i in range(4))
    if average == "macro":
        return jnp.mean(score_fn(tp, fp, fn, tn), axis=-1)
    if average == "micro":
        return score_fn(*(v.sum(axis=-1) for v in (tp, fp, fn, tn)))
    if average == "none":
        return score_fn(tp, fp, fn, tn)
    raise ValueError(f"average must be 'macro', 'micro' or 'none'; got {average!r}")
