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

Everything is vectorised over the rows of a (rows, p) array (images, or
images×classes) — no Python loop, so ``jit`` and ``vmap`` apply — and exact: the
order is a stable sort (ties in input order, as NumPy's and torch's CPU sorts keep
them), and the increments are formed from the counts without the float32
cancellation of Berman's ``jaccard[1:] − jaccard[:-1]`` (counts are float32, exact
below 2²⁴ pixels per row, as in Berman's code). How it is fast:

* Only positive errors matter: relu(e)·Δ is 0 elsewhere and Δ_r depends only on
  the labels sorted before r (and |P|), all of which have larger errors. When
  every row's positive errors fit a bucket of 1/32, 1/8 or 1/2 of the row, they
  are compacted first (a stable partition: cumsum + scatter, under ``lax.switch``)
  and only the bucket is sorted: a trained network's few positive errors sort in
  a fraction of the time of a whole row.
* Keys are int32 (the bits of relu(e), reversed so that ascending key = descending
  error); ``jaxseg.ops.radix_argsort.sort_by_key`` sorts them: on CPU NumPy's radix
  sort through a host callback for long rows, XLA's single-operand uint64 sort
  otherwise (both exact and stable; see there); on other platforms XLA's key+index
  sort.
* The gradient is a custom JVP: the loss is piecewise linear in the errors, with
  slope Δ_r at the pixel of rank r, which the sort pass already has; the backward
  pass is one scatter (labels, weights, α, β get no derivative, as in Berman's code).

Shapes: these are the lower-level forms. ``lovasz_hinge`` takes logits and
labels of one shape (N, H, W) (any trailing shape); ``lovasz_softmax`` takes
probabilities (N, ..., C) and either one-hot labels of the same shape or an
integer class map (N, ...). A mismatch raises ``ValueError`` naming both
shapes. The registered losses ``lovasz_hinge`` / ``lovasz_softmax``
(``jaxseg.losses``) are the NHWC wrappers: logits and labels (N, H, W, C).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.ops.radix_argsort import sort_by_key
from jaxseg.ops.shapes import check_same_shape, shape_error

__all__ = ["lovasz_grad", "lovasz_hinge", "lovasz_softmax", "lovasz_classes"]


def _is(value, constant) -> bool:
    """``value`` is the Python number ``constant`` (so a term can be left out at trace time)."""
    return isinstance(value, (int, float)) and value == constant


def _tversky_increments(pos, neg, fn0, fp0, total_pos, alpha, beta):
    """F(S_r) − F(S_{r−1}) from pixel r's weights (pos, neg) and the counts FN, FP before it.

    F = num/den with num = α·FN + β·FP and den = TP + num = |P| + (α − 1)·FN + β·FP.
    The increment is formed as (δnum·den₀ − num₀·δden)/(den·den₀) from the counts
    before r (subscript 0), not as a difference of two values of F: that
    difference of two numbers near 1 loses about log₂(n) of float32's 24 bits
    (increments are ~1/n), this form none. F is 0 where den is 0. ``alpha`` and
    ``beta`` may be arrays; as Python numbers, terms they zero are left out.
    """
    def scaled(c, x):
        return x if _is(c, 1) else c * x

    num0 = scaled(alpha, fn0) + scaled(beta, fp0)
    d_num = scaled(alpha, pos) + scaled(beta, neg)
    d_den = scaled(beta, neg) if _is(alpha, 1) else (alpha - 1.0) * pos + scaled(beta, neg)
    den0 = total_pos + (scaled(beta, fp0) if _is(alpha, 1) else (alpha - 1.0) * fn0 + scaled(beta, fp0))
    den = den0 + d_den
    prod = den * den0
    step = (d_num * den0 - num0 * d_den) / jnp.where(prod > 0, prod, 1.0)
    # den₀ = 0 only before the first counted pixel of a row without positives: F(S_{r−1}) = 0
    first = jnp.where(den > 0, d_num / jnp.where(den > 0, den, 1.0), 0.0)
    return jnp.where(den0 > 0, jnp.where(den > 0, step, -num0 / jnp.where(den0 > 0, den0, 1.0)), first)


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
    fn0 = jnp.cumsum(pos, axis=-1) - pos
    fp0 = jnp.cumsum(neg, axis=-1) - neg
    return _tversky_increments(pos, neg, fn0, fp0, jnp.sum(pos, axis=-1, keepdims=True), alpha, beta)


# --- the sort -----------------------------------------------------------------------------------------
# Keys: ascending key = descending error. 0x7F800001 − bits(relu(e)): +inf → 1, finite positive errors
# → 2 … 0x7F800000, NaN → 0 (first, so the loss is NaN), every error ≤ 0 → _NONPOS (last). On positive
# errors the map inverts: relu(e) = bitcast(_NONPOS − key), NaN included (0x7F800001 is a NaN).
_NONPOS = 0x7F800001
# Only positive errors count (relu(e)·Δ, and Δ_r depends on the pixels sorted before r, all of which
# have larger errors), so when every row's positive errors fit a bucket smaller than the row they are
# compacted first (a stable partition: cumsum + scatter) and only the bucket is sorted. Buckets are
# fractions of the row length; rows shorter than _COMPACT_MIN are sorted whole.
_BUCKETS = (1 / 32, 1 / 8, 1 / 2)  # each bucket adds ~0.6 s of compile time (8×256²)
_COMPACT_MIN = 4096


def _error_keys(errors):
    bits = lax.bitcast_convert_type(jnp.maximum(errors, 0.0), jnp.int32) & 0x7FFFFFFF  # −0.0, −NaN too
    return jnp.int32(_NONPOS) - jnp.minimum(bits, _NONPOS)


def _relu_from_keys(keys):
    return lax.bitcast_convert_type(jnp.int32(_NONPOS) - keys, jnp.float32)


def _pair_sort(keys, positions=None):
    """(sorted keys, positions): XLA's stable key+index sort (other platforms)."""
    if positions is None:
        positions = lax.broadcasted_iota(jnp.int32, keys.shape, keys.ndim - 1)
    return tuple(lax.sort((keys, positions), dimension=keys.ndim - 1, num_keys=1, is_stable=True))


def _bucket_sizes(n: int) -> list[int]:
    if n < max(_COMPACT_MIN, 1):
        return [n]
    return sorted({math.ceil(n * f) for f in _BUCKETS if math.ceil(n * f) < n} | {n})


def _flat_index(idx, n):
    """Positions in the flattened (rows·n) array of per-row indices ``idx`` (rows, m)."""
    return (idx + lax.broadcasted_iota(jnp.int32, idx.shape, 0) * n).reshape(-1)


def _take_rows(a, idx):
    """a[r, idx[r, j]] for (rows, n) ``a`` and in-range (rows, m) ``idx``: one flat gather."""
    if a.size >= 2**31:
        return jnp.take_along_axis(a, idx, axis=-1, mode="promise_in_bounds")
    return a.reshape(-1).at[_flat_index(idx, a.shape[1])].get(mode="promise_in_bounds").reshape(idx.shape)


def _put_rows(values, idx, keep, n):
    """(rows, n) zeros with ``values`` written at the distinct in-range ``idx`` where ``keep``."""
    rows = values.shape[0]
    if rows * n >= 2**31:
        row = lax.broadcasted_iota(jnp.int32, idx.shape, 0)
        return jnp.zeros((rows, n), values.dtype).at[row, jnp.where(keep, idx, n)].set(
            values, mode="drop", unique_indices=True)
    flat = jnp.where(keep.reshape(-1), _flat_index(idx, n), rows * n)
    return jnp.zeros((rows * n,), values.dtype).at[flat].set(
        values.reshape(-1), mode="drop", unique_indices=True).reshape(rows, n)


def _sorted_rows(m, sort, keys, gt, w, total_pos, alpha, beta, with_grad):
    """Loss per row (and d loss / d errors) from the m smallest keys of each (rows, n) row.

    m ≥ the number of positive errors in every row; m < n compacts them first.
    """
    rows, n = keys.shape
    if m < n:
        positive = keys < _NONPOS
        # destinations must be exact: float32 counts are (and scan faster than int32 on XLA:CPU) below 2^24
        c = jnp.cumsum(positive.astype(jnp.float32 if n < 2**24 else jnp.int32), axis=-1).astype(jnp.int32)
        iota = lax.broadcasted_iota(jnp.int32, (rows, n), 1)
        pos_c = _put_rows(iota, c - 1, positive, m)  # stable partition: positive errors first, in order
        filled = lax.broadcasted_iota(jnp.int32, (rows, m), 1) < c[:, -1:]
        k_s, perm = sort(jnp.where(filled, _take_rows(keys, pos_c), _NONPOS), pos_c)
    else:
        k_s, perm = sort(keys)
    positive_s = k_s < _NONPOS
    gt_s = _take_rows(gt, perm)
    r = lax.broadcasted_iota(jnp.float32, gt_s.shape, 1)  # pixels before r (exact below 2^24)
    if w is None and _is(alpha, 1) and _is(beta, 1):  # Berman's loss: the same Δ in fewer passes
        neg = 1.0 - gt_s
        den = total_pos + (r + 1.0) - jnp.cumsum(gt_s, axis=-1)  # |P| + FP_r
        den0 = den - neg  # |P| + FP_{r−1}; 0 only at r = 0 in a row without positives, where Δ = 1
        delta = jnp.where(den0 > 0, (den - (r + 1.0) * neg) / jnp.where(den0 > 0, den * den0, 1.0), 1.0)
    else:
        if w is None:
            pos, neg = gt_s, 1.0 - gt_s
            fn0 = jnp.cumsum(gt_s, axis=-1) - gt_s
            fp0 = r - fn0  # = cumsum(1 − gt) − (1 − gt): one scan fewer
        else:
            w_s = _take_rows(w, perm)
            pos, neg = gt_s * w_s, (1.0 - gt_s) * w_s
            fn0 = jnp.cumsum(pos, axis=-1) - pos
            fp0 = jnp.cumsum(w_s, axis=-1) - w_s - fn0
        delta = _tversky_increments(pos, neg, fn0, fp0, total_pos, alpha, beta)  # finite everywhere
    loss = jnp.sum(_relu_from_keys(k_s) * delta, axis=-1)  # relu(e) = 0 past the positive errors
    return loss, (_put_rows(delta, perm, positive_s, n) if with_grad else None)


def _rows_loss(errors, gt, w, alpha, beta, with_grad):
    """Lovász extension of each (rows, n) row and, with ``with_grad``, its gradient in the errors."""
    rows, n = errors.shape
    if n == 0 or rows == 0:
        return jnp.zeros((rows,), jnp.float32), (jnp.zeros((rows, n), jnp.float32) if with_grad else None)
    keys = _error_keys(errors)
    total_pos = jnp.sum(gt if w is None else gt * w, axis=-1, keepdims=True)
    sorted_rows = functools.partial(_sorted_rows, alpha=alpha, beta=beta, with_grad=with_grad)

    def on_cpu(keys, gt, w, total_pos):
        sizes = _bucket_sizes(n)
        branches = [functools.partial(sorted_rows, m, sort_by_key) for m in sizes]
        if len(sizes) == 1:
            return branches[0](keys, gt, w, total_pos)
        most = jnp.max(jnp.sum((keys < _NONPOS).astype(jnp.int32), axis=-1))
        index = jnp.sum((most > jnp.asarray(sizes[:-1], jnp.int32)).astype(jnp.int32))
        return lax.switch(index, branches, keys, gt, w, total_pos)

    def elsewhere(keys, gt, w, total_pos):
        return sorted_rows(n, _pair_sort, keys, gt, w, total_pos)

    return lax.platform_dependent(keys, gt, w, total_pos, cpu=on_cpu, default=elsewhere)


def _flat_rows(errors, gt, w, alpha, beta, with_grad):
    shape = errors.shape
    flat = lambda a: None if a is None else a.reshape(-1, shape[-1])
    loss, grad = _rows_loss(flat(errors), flat(gt), flat(w), alpha, beta, with_grad)
    return loss.reshape(shape[:-1]), (None if grad is None else grad.reshape(shape))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _lovasz_extension(errors, gt, w, alpha, beta):
    """Σ_r relu(e)_{π_r}·Δ_r over the last axis (π sorts the errors decreasingly, stably).

    A custom JVP: the loss is piecewise linear in the errors, with slope Δ_r at
    the pixel of rank r, which the sort pass has at hand; so the backward pass is
    one scatter. Labels, weights, α and β are constants (no derivative).
    """
    return _flat_rows(errors, gt, w, alpha, beta, with_grad=False)[0]


@_lovasz_extension.defjvp
def _lovasz_extension_jvp(alpha, beta, primals, tangents):
    errors, gt, w = primals
    loss, grad = _flat_rows(errors, gt, w, alpha, beta, with_grad=True)
    return loss, jnp.sum(grad * tangents[0], axis=-1)


def _lovasz_rows(errors, gt, weights, alpha, beta):
    """Σ_r relu(e)_{π_r}·Δ_r for each row of (..., p) errors; π sorts errors decreasingly."""
    errors = errors.astype(jnp.float32)
    gt = jnp.broadcast_to(gt, errors.shape).astype(jnp.float32)
    if weights is not None:
        weights = jnp.broadcast_to(weights, errors.shape).astype(jnp.float32)
        errors = jnp.where(weights > 0, errors, 0.0)
    return _lovasz_extension(errors, gt, weights, alpha, beta)


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
