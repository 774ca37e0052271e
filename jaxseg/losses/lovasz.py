"""Lovász losses: convex surrogates of the Jaccard loss (Berman et al. 2018; thesis §5.2.1).

For a ground truth y ∈ {0,1}^p and a vector of pixel errors m ∈ ℝ^p, the loss is
the Lovász extension of the set function "1 − Jaccard of the misclassified set",

    F_J(M) = |M| / |M ∪ P| = (FN + FP) / (TP + FN + FP),

evaluated at m: sort m decreasingly (permutation π) and take
``Σ_r m_{π_r} · (F(π_1..π_r) − F(π_1..π_{r−1}))``. The increments are
``lovasz_grad``, computed for all r at once by cumulative sums over the sorted
labels (FN_r = Σ_{k≤r} y_{π_k}, FP_r = Σ_{k≤r} (1 − y_{π_k})).

``lovasz_grad`` is written for the Tversky set function
F_T = (α·FN + β·FP)/(TP + α·FN + β·FP): α = β = 1 is Jaccard (the default,
Berman's loss); α = β = ½ gives a Lovász-Dice and other α, β a Lovász-Tversky
surrogate. Those are exact extensions (equal to F on {0,1}^p) but, as F_D and F_T
are not submodular in general (see ``jaxseg.analysis.submodular``), not convex.

Everything is vectorised: one argsort along the last axis of a (rows, p) array
(images, or images×classes), cumulative sums, and a dot — no Python loop, so
``jit`` and ``vmap`` apply. Sorting uses int32 keys: for non-negative floats the
bit pattern orders like the value. Only the order of positive errors matters
(zero errors add nothing), so keys are built from relu(errors); ignored pixels
get weight 0 and key 0. On CPU the argsort is ``jaxseg.ops.radix_argsort``
(single-operand integer sorts, about 3× faster there than a key+index sort); on
other platforms it is XLA's key+index sort.

Shapes: these are the lower-level forms. ``lovasz_hinge`` takes logits and
labels of one shape (N, H, W) (any trailing shape); ``lovasz_softmax`` takes
probabilities (N, ..., C) and either one-hot labels of the same shape or an
integer class map (N, ...). A mismatch raises ``ValueError`` naming both
shapes. The registered losses ``lovasz_hinge`` / ``lovasz_softmax``
(``jaxseg.losses``) are the NHWC wrappers: logits and labels (N, H, W, C).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.ops.radix_argsort import radix_argsort
from jaxseg.ops.shapes import check_same_shape, shape_error

__all__ = ["lovasz_grad", "lovasz_hinge", "lovasz_softmax", "lovasz_classes"]


def lovasz_grad(gt_sorted, alpha: float = 1.0, beta: float = 1.0, weights=None):
    """Increments F(π₁..π_r) − F(π₁..π_{r−1}) of the Tversky set loss along the last axis.

    ``F = (α·FN + β·FP)/(TP + α·FN + β·FP)`` with FN_r, FP_r the positives and
    negatives among the first r sorted pixels and TP_r = |P| − FN_r (Berman et
    al. 2018, Alg. 1, for α = β = 1). ``weights`` (0/1, same shape) drops
    ignored pixels. F is 0 where its denominator is 0 (nothing to count).
    """
    gt = gt_sorted.astype(jnp.float32)
    w = jnp.ones_like(gt) if weights is None else weights.astype(jnp.float32)
    pos, neg = gt * w, (1.0 - gt) * w
    fn = jnp.cumsum(pos, axis=-1)
    fp = jnp.cumsum(neg, axis=-1)
    tp = jnp.sum(pos, axis=-1, keepdims=True) - fn
    num = alpha * fn + beta * fp
    den = tp + num
    f = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)
    return jnp.diff(f, axis=-1, prepend=jnp.zeros_like(f[..., :1]))


def _pair_argsort(keys):
    iota = lax.broadcasted_iota(jnp.int32, keys.shape, keys.ndim - 1)
    return lax.sort((keys, iota), dimension=keys.ndim - 1, num_keys=1, is_stable=False)[1]


def _descending_order(errors):
    """Permutation sorting relu(errors) decreasingly along the last axis (platform's fastest exact sort)."""
    bits = lax.bitcast_convert_type(jnp.maximum(errors, 0.0).astype(jnp.float32), jnp.int32)
    keys = jnp.int32(0x7F800000) - jnp.minimum(bits, 0x7F800000)  # ascending keys = descending errors, ≥ 0
    return lax.stop_gradient(lax.platform_dependent(keys, cpu=radix_argsort, default=_pair_argsort))


def _lovasz_rows(errors, gt, weights, alpha: float, beta: float):
    """Σ_r relu(e)_{π_r}·Δ_r for each row of (R, p) errors; π sorts errors decreasingly."""
    errors = errors.astype(jnp.float32)
    if weights is not None:
        errors = jnp.where(weights > 0, errors, 0.0)
    perm = _descending_order(errors)
    take = lambda a: jnp.take_along_axis(a, perm, axis=-1)
    grad = lovasz_grad(take(gt), alpha, beta, None if weights is None else take(weights))
    return jnp.sum(jax.nn.relu(take(errors)) * grad, axis=-1)


def lovasz_hinge(logits, labels, per_image: bool = True, ignore: int | None = None,
                 alpha: float = 1.0, beta: float = 1.0, weights=None):
    """Lovász hinge loss for binary segmentation (Berman et al. 2018, eq. (10)).

    ``loss = f_J(relu(1 − z·s))`` with s = 2y − 1 the label signs, f_J the Lovász
    extension of the Jaccard set loss (``lovasz_grad``).

    Args:
      logits: (N, ...) raw scores z (any trailing shape, e.g. NHW or NHW1).
      labels: same shape, {0,1}; pixels equal to ``ignore`` are left out.
      per_image: average the loss over images (True) or pool every pixel of
        the batch into one set (False).
      alpha, beta: Tversky weights of FN / FP; 1, 1 is Berman's Jaccard loss.
      weights: None or the same shape as ``labels``, {0,1}: pixels of weight 0 are
        left out (no error, not counted in FN/FP), as ``ignore``.

    An image without foreground gives the largest positive error (finite); a
    batch where every pixel is ignored gives 0 (so does an image, counted in the
    mean over images). Different shapes raise ``ValueError``.
    """
    shape = check_same_shape("lovasz_hinge", "(N, H, W)", logits=logits, labels=labels, weights=weights)
    if len(shape) < 1:
        raise shape_error("lovasz_hinge", "must have a batch axis: (N, H, W)", logits=logits, labels=labels)
    z = logits.astype(jnp.float32)
    y = labels.astype(jnp.float32)
    rows = z.shape[0] if per_image else 1
    z, y = z.reshape(rows, -1), y.reshape(rows, -1)
    if weights is not None:
        weights = weights.astype(jnp.float32).reshape(rows, -1)
    if ignore is not None:
        keep = (y != ignore).astype(jnp.float32)
        weights = keep if weights is None else weights * keep
        y = y * keep
    errors = 1.0 - z * (2.0 * y - 1.0)
    return jnp.mean(_lovasz_rows(errors, y, weights, alpha, beta))


def lovasz_softmax(probs, labels, classes: str | Sequence[int] = "present", per_image: bool = False,
                   ignore: int | None = None, alpha: float = 1.0, beta: float = 1.0, weights=None):
    """Lovász-softmax loss (Berman et al. 2018, eq. (12)): mean over classes c of f_J(|y_c − p_c|).

    Args:
      probs: (N, ..., C) class probabilities (softmax output).
      labels: (N, ...) integer class map, or (N, ..., C) one-hot (pixels whose
        one-hot vector is all zero are ignored).
      classes: 'present' (classes that occur in the labels of the image, or of
        the batch if not per_image), 'all', or a list of class indices.
      per_image: loss per image, then the mean over images.
      ignore: label value left out (integer maps).
      alpha, beta: Tversky weights of FN / FP; 1, 1 is the Jaccard loss.
      weights: None or (N, ...) pixel weights in {0,1}; 0 leaves the pixel out as ``ignore``.

    No present class (e.g. every pixel ignored) gives 0. Other shapes raise ``ValueError``.
    """
    if np.ndim(probs) < 2 or np.shape(labels) not in (np.shape(probs), np.shape(probs)[:-1]):
        raise shape_error("lovasz_softmax", "must be (N, ..., C) and the same shape (one-hot) or "
                          "(N, ...) (an integer class map)", probs=probs, labels=labels)
    if weights is not None and np.shape(weights) != np.shape(probs)[:-1]:
        raise shape_error("lovasz_softmax", "must be (N, ..., C) and weights (N, ...)", probs=probs,
                          weights=weights)
    p = probs.astype(jnp.float32)
    n_classes = p.shape[-1]
    if labels.ndim == p.ndim:
        if ignore is not None:
            raise ValueError("ignore applies to integer label maps; one-hot pixels of all zeros are ignored")
        fg = labels.astype(jnp.float32)
        valid = (jnp.sum(fg, axis=-1) > 0).astype(jnp.float32)
    else:
        valid = jnp.ones(labels.shape, jnp.float32) if ignore is None else (labels != ignore).astype(jnp.float32)
        fg = jax.nn.one_hot(labels, n_classes, dtype=jnp.float32) * valid[..., None]
    if weights is not None:
        valid = valid * weights.astype(jnp.float32)
    return lovasz_classes(p, fg, valid, classes, per_image, alpha, beta)


def lovasz_classes(p, fg, valid, classes="present", per_image: bool = False, alpha: float = 1.0,
                   beta: float = 1.0):
    """Mean over classes (and images if ``per_image``) of f_J(|fg_c − p_c|) over the ``valid`` pixels.

    ``p``, ``fg``: (N, ..., C) probabilities and (soft) ground truth per class;
    ``valid``: (N, ...) pixel weights in {0,1}. ``lovasz_softmax`` after its
    label handling; the NHWC wrapper calls it directly for sigmoid (multilabel) classes.
    """
    if not isinstance(classes, str):
        idx = jnp.asarray(classes, jnp.int32)
        p, fg = p[..., idx], fg[..., idx]
    elif classes not in ("present", "all"):
        raise ValueError(f"classes must be 'present', 'all' or a list of class indices; got {classes!r}")
    rows = p.shape[0] if per_image else 1
    k = p.shape[-1]
    # (rows, K, pixels): one Lovász row per image (or batch) and class
    p = jnp.swapaxes(p.reshape(rows, -1, k), 1, 2)
    fg = jnp.swapaxes(fg.reshape(rows, -1, k), 1, 2)
    w = jnp.broadcast_to(valid.reshape(rows, 1, -1), p.shape)
    losses = _lovasz_rows(jnp.abs(fg - p), fg, w, alpha, beta)  # (rows, K)
    if classes == "present":
        present = (jnp.sum(fg * w, axis=-1) > 0).astype(jnp.float32)  # present among the valid pixels
    else:
        present = jnp.ones_like(losses) * (jnp.sum(w[:, :1], axis=-1) > 0)
    per_row = jnp.sum(losses * present, axis=-1) / jnp.maximum(jnp.sum(present, axis=-1), 1.0)
    return jnp.mean(per_row)
