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

Prediction (:mod:`jaxseg.metrics.modes`, the one rule): ``mode='multiclass'``
predicts the argmax class (one-hot), 'binary'/'multilabel' ``probs > threshold``
per channel; default 'binary' for C = 1, else 'multiclass'. Pixels of
``pixel_weight`` 0 are counted nowhere.

Multi-class masks (C > 1 channels) are scored one-vs-rest per channel — in
multiclass mode that is scikit-learn's per-class precision/recall/F1 of the
argmax labels. :func:`average_scores` averages them with scikit-learn's names:
'macro' (mean over the C channels: scikit-learn with ``labels=range(C)``),
'micro' (the score of the counts summed over classes), 'weighted' (per-class
scores weighted by support = ground-truth pixels of the class), 'samples' (per
image the micro score, then the mean over images: scikit-learn's 'samples' with
each image one sample of H·W·C labels) or 'none' (per-class values). Dice and
Jaccard's empty rule is scikit-learn's ``zero_division=1``.
:func:`multiclass_balanced_accuracy` is scikit-learn's ``balanced_accuracy_score``
of a multiclass run: the mean recall over the classes present in the ground truth.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from jaxseg.metrics.modes import pixel_mask, predict_masks
from jaxseg.ops.shapes import check_nhwc, check_same_shape, shape_error


def _check_counts(fn, tp, fp, fn_, tn=None):
    check_same_shape(fn, "", None, tp=tp, fp=fp, fn=fn_, tn=tn)


def confusion_counts(probs, labels, threshold: float = 0.5, valid=None, mode: str | None = None,
                     pixel_weight=None):
    """Per-image, per-class counts (TP, FP, FN, TN), each of shape (N, C).

    ``probs`` (N, H, W, C) in [0, 1]; ``labels`` (N, H, W, C) in {0, 1}; the
    prediction is :func:`jaxseg.metrics.predict_masks` ``(probs, mode, threshold)``:
    argmax in multiclass mode, ``probs > threshold`` (the thesis's T_δ) in binary
    and multilabel mode; ``mode=None`` is 'binary' for C = 1, else 'multiclass'.
    ``valid`` (N,) bool zeroes the padded images of the last evaluation batch;
    ``pixel_weight`` (N, H, W, 1) zeroes the pixels of weight 0 (ignored: in no count).
    Counts are int32 (exact up to 2³¹ pixels, unlike float32 sums). Other shapes
    raise ``ValueError`` naming them.
    """
    check_nhwc("confusion_counts", probs=probs, labels=labels)
    w = pixel_mask("confusion_counts", probs, valid, pixel_weight)
    pred = predict_masks(probs, mode, threshold)
    y = jnp.asarray(labels) > 0.5
    if w is not None:
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
    """Balanced accuracy = (recall + specificity) / 2 (scikit-learn's definition, binary case).

    Per channel (one-vs-rest): binary and multilabel mode. A multiclass run uses
    :func:`multiclass_balanced_accuracy`.
    """
    _check_counts("balanced_accuracy_score", tp, fp, fn, tn)
    return 0.5 * (recall_score(tp, fp, fn) + specificity_score(tp, fp, fn, tn))


def multiclass_balanced_accuracy(counts):
    """scikit-learn's ``balanced_accuracy_score`` of multiclass labels from per-class counts.

    ``counts`` (..., C, 4) = (TP, FP, FN, TN) of the one-hot argmax prediction; returns
    (...): the mean of recall TP/(TP+FN) over the classes present in the ground truth
    (TP + FN > 0). With no class present (nothing counted) the mean of the recalls'
    empty rule (1 where nothing was predicted either), never NaN.
    """
    if len(jnp.shape(counts)) < 2 or jnp.shape(counts)[-1] != 4:
        raise shape_error("multiclass_balanced_accuracy", "must have shape (..., C, 4)", counts=counts)
    tp, fp, fn = (jnp.asarray(counts[..., i], jnp.float32) for i in range(3))
    recall = recall_score(tp, fp, fn)
    present = (tp + fn) > 0
    n = jnp.sum(present, axis=-1)
    return jnp.where(n > 0, jnp.sum(jnp.where(present, recall, 0.0), -1) / jnp.maximum(n, 1),
                     jnp.mean(recall, axis=-1))


SCORES: dict[str, Callable] = {
    "dice": dice_score,
    "jaccard": jaccard_score,
    "precision": precision_score,
    "recall": recall_score,
    "specificity": specificity_score,
    "balanced_accuracy": balanced_accuracy_score,
}

AVERAGES = ("macro", "micro", "weighted", "samples", "none")


def average_scores(score_fn: Callable, counts, average: str = "macro"):
    """Scores of per-class counts ``counts`` (..., C, 4) = (TP, FP, FN, TN) along the last axis.

    scikit-learn's averages:
    ``'macro'``: mean over classes of the per-class scores;
    ``'micro'``: the score of the counts summed over classes;
    ``'weighted'``: per-class scores weighted by support TP + FN (ground-truth pixels of
    the class); with no ground-truth pixel in any class, the macro mean (as scikit-learn's
    ``jaccard_score``; never NaN);
    ``'samples'``: ``counts`` (N, C, 4) of N images: each image's micro score, mean over images;
    ``'none'``: the per-class scores, shape (..., C).
    """
    if len(jnp.shape(counts)) < 2 or jnp.shape(counts)[-1] != 4:
        raise shape_error("average_scores", "must have shape (..., C, 4)", counts=counts)
    tp, fp, fn, tn = (counts[..., i] for i in range(4))
    if average == "macro":
        return jnp.mean(score_fn(tp, fp, fn, tn), axis=-1)
    if average == "micro":
        return score_fn(*(v.sum(axis=-1) for v in (tp, fp, fn, tn)))
    if average == "weighted":
        support = jnp.asarray(tp, jnp.float32) + fn
        total = jnp.sum(support, axis=-1, keepdims=True)
        w = jnp.where(total > 0, support / jnp.where(total > 0, total, 1.0), 1.0 / support.shape[-1])
        return jnp.sum(score_fn(tp, fp, fn, tn) * w, axis=-1)
    if average == "samples":
        if len(jnp.shape(counts)) != 3:
            raise shape_error("average_scores", "must have shape (N, C, 4) for average='samples'",
                              counts=counts)
        return jnp.mean(score_fn(*(v.sum(axis=-1) for v in (tp, fp, fn, tn))), axis=0)
    if average == "none":
        return score_fn(tp, fp, fn, tn)
    raise ValueError(f"average must be one of {', '.join(AVERAGES)}; got {average!r}")
