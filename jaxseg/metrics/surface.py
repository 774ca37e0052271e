"""Hausdorff-family distances between a predicted and a ground-truth mask (thesis §5.1).

X = prediction, Y = ground truth, as point sets of pixel centres (scaled by
``spacing``), d(x, Y) = min_{y∈Y} ‖x − y‖. Per image:

  hausdorff (HD)             max{ max_{x∈X} d(x,Y), max_{y∈Y} d(y,X) }           (thesis)
  hausdorff(percentile=q)    max{ P_q{d(x,Y)}_{x∈X}, P_q{d(y,X)}_{y∈Y} }; HD95 = q 95
                             (per-direction percentile, symmetric max — MONAI's HD95)
  average_hausdorff (AHD)    ½ (Σ_x d(x,Y)/|X| + Σ_y d(y,X)/|Y|)                  (thesis)
  balanced_average_hausdorff ½ (Σ_x d(x,Y)/|Y| + Σ_y d(y,X)/|Y|)   (Aydin et al. 2021)
  modified_average_hausdorff AHD with d(x,Y) replaced by the 95th percentile, in
                             decreasing order, of {d(x,y) : y∈Y} (thesis's MAHD;
                             see :mod:`jaxseg.metrics.percentile_distance`)

P_q is numpy's default ('linear') percentile. ``on='region'`` uses the masks
themselves as X and Y (the thesis); ``on='boundary'`` their boundary pixels —
the mask minus its erosion by the 4-connected cross, pixels outside the image
counting as background (MONAI's ``get_mask_edges`` and DeepMind's
surface-distance convention). d(x, Y) for every pixel is the exact Euclidean
distance transform of the complement of Y (``jaxseg.ops``).

Empty sets (docs/architecture.md): both empty → 0; exactly one empty → the image
diagonal sqrt((H·s_h)² + (W·s_w)²) (≥ every distance in the image). With
``normalize=True`` distances are divided by that diagonal (empty miss → 1.0).
Never NaN or inf.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxseg.metrics.percentile_distance import mean_percentile_distance
from jaxseg.ops import euclidean_distance_transform

Spacing = float | Sequence[float]


def _spacing(spacing: Spacing) -> tuple[float, float]:
    if isinstance(spacing, (int, float)):
        return float(spacing), float(spacing)
    sh, sw = spacing
    return float(sh), float(sw)


def image_diagonal(shape: Sequence[int], spacing: Spacing = 1.0) -> float:
    """sqrt((H·s_h)² + (W·s_w)²): the empty-mask distance and the normaliser."""
    sh, sw = _spacing(spacing)
    h, w = shape[-2:]
    return math.sqrt((h * sh) ** 2 + (w * sw) ** 2)


def boundary(mask):
    """Boundary pixels of ``mask`` (..., H, W): mask ∧ ¬erode(mask, 4-connected cross).

    Outside the image counts as background, so mask pixels on the image border
    are boundary pixels (scipy ``binary_erosion`` with ``border_value=0``).
    """
    m = jnp.asarray(mask, bool)
    pad = [(0, 0)] * (m.ndim - 2) + [(1, 1), (1, 1)]
    p = jnp.pad(m, pad, constant_values=False)
    eroded = (p[..., 1:-1, 1:-1] & p[..., :-2, 1:-1] & p[..., 2:, 1:-1]
              & p[..., 1:-1, :-2] & p[..., 1:-1, 2:])
    return m & ~eroded


def point_sets(pred, labels, on: str = "region"):
    """(X, Y) as boolean (..., H, W) masks: the regions or their boundaries."""
    x, y = jnp.asarray(pred, bool), jnp.asarray(labels, bool)
    if on == "region":
        return x, y
    if on == "boundary":
        return boundary(x), boundary(y)
    raise ValueError(f"on must be 'region' or 'boundary'; got {on!r}")


def masked_percentile(values, mask, q: float):
    """numpy's linear ``percentile(values[mask], q)`` over the last two axes, batched.

    Position a = q/100·(n − 1) in ascending order (exact rational arithmetic),
    value = v₍⌊a⌋₎ + (a − ⌊a⌋)(v₍⌊a⌋+1₎ − v₍⌊a⌋₎). Uses ``lax.top_k`` with the
    static k = ⌈(1 − q/100)(HW − 1)⌉ + 1 instead of a full sort. ``values`` ≥ 0;
    the result for an empty mask is arbitrary (finite).
    """
    *lead, h, w = values.shape
    hw = h * w
    flat = jnp.where(mask, values, -1.0).reshape(*lead, hw)
    if q >= 100:
        return jnp.max(flat, axis=-1)
    frac = Fraction(str(q)) / 100
    k = min(hw, -((-(frac.denominator - frac.numerator) * (hw - 1)) // frac.denominator) + 1)
    top = jax.lax.top_k(flat, k)[0]  # descending
    n = jnp.sum(mask, axis=(-2, -1), dtype=jnp.int32).reshape(*lead)
    num = frac.numerator * jnp.maximum(n - 1, 0)
    fl, rem = num // frac.denominator, num % frac.denominator
    i0 = jnp.clip(n - 1 - fl, 0, k - 1)
    i1 = jnp.clip(n - 2 - fl, 0, k - 1)
    v0 = jnp.take_along_axis(top, i0[..., None], axis=-1)[..., 0]
    v1 = jnp.take_along_axis(top, i1[..., None], axis=-1)[..., 0]
    return v0 + (rem.astype(jnp.float32) / frac.denominator) * (v1 - v0)


def _masked_sum(d, m):
    return jnp.sum(jnp.where(m, d, 0.0), axis=(-2, -1))


def _sizes(x, y):
    return (jnp.sum(x, axis=(-2, -1), dtype=jnp.int32), jnp.sum(y, axis=(-2, -1), dtype=jnp.int32))


def nearest_distances(x, y, spacing: Spacing = 1.0):
    """(d(·, Y), d(·, X)) at every pixel: exact EDTs of the complements of Y and X."""
    s = _spacing(spacing)
    return euclidean_distance_transform(~y, s), euclidean_distance_transform(~x, s)


def _distance_metric(combine: Callable, pred, labels, on, normalize, spacing):
    """Shared frame: point sets, the empty rule, normalisation.

    ``combine(x, y) -> (...)`` gives the distance where both sets are non-empty.
    """
    x, y = point_sets(pred, labels, on)
    value = combine(x, y)
    nx, ny = _sizes(x, y)
    diag = image_diagonal(x.shape, spacing)
    value = jnp.where((nx > 0) & (ny > 0), value, jnp.where((nx > 0) | (ny > 0), diag, 0.0))
    return value / diag if normalize else value


def hausdorff(pred, labels, percentile: float = 100, on: str = "region",
              normalize: bool = False, spacing: Spacing = 1.0):
    """Hausdorff distance per image (thesis §5.1), or its per-direction percentile variant.

    d_H(X,Y) = max{ P_q{d(x,Y) : x∈X}, P_q{d(y,X) : y∈Y} }; q = 100 is the
    Hausdorff distance max{max_x d(x,Y), max_y d(y,X)}, q = 95 is HD95
    (MONAI ``compute_hausdorff_distance(percentile=95)``). ``pred``, ``labels``:
    binary masks (..., H, W); returns float32 (...).
    """
    def combine(x, y):
        d_xy, d_yx = nearest_distances(x, y, spacing)
        return jnp.maximum(masked_percentile(d_xy, x, percentile), masked_percentile(d_yx, y, percentile))

    return _distance_metric(combine, pred, labels, on, normalize, spacing)


def hausdorff95(pred, labels, on: str = "region", normalize: bool = False, spacing: Spacing = 1.0):
    """HD95 = max{P95{d(x,Y)}_{x∈X}, P95{d(y,X)}_{y∈Y}} per image (:func:`hausdorff`, q = 95)."""
    return hausdorff(pred, labels, 95, on, normalize, spacing)


def average_hausdorff(pred, labels, on: str = "region", normalize: bool = False,
                      spacing: Spacing = 1.0):
    """Average Hausdorff distance (thesis §5.1): ½(Σ_x d(x,Y)/|X| + Σ_y d(y,X)/|Y|) per image."""
    def combine(x, y):
        d_xy, d_yx = nearest_distances(x, y, spacing)
        nx, ny = _sizes(x, y)
        return 0.5 * (_masked_sum(d_xy, x) / jnp.maximum(nx, 1) + _masked_sum(d_yx, y) / jnp.maximum(ny, 1))

    return _distance_metric(combine, pred, labels, on, normalize, spacing)


def balanced_average_hausdorff(pred, labels, on: str = "region", normalize: bool = False,
                               spacing: Spacing = 1.0):
    """Balanced average Hausdorff (Aydin et al. 2021): ½(Σ_x d(x,Y) + Σ_y d(y,X))/|Y|, Y = ground truth."""
    def combine(x, y):
        d_xy, d_yx = nearest_distances(x, y, spacing)
        _, ny = _sizes(x, y)
        return 0.5 * (_masked_sum(d_xy, x) + _masked_sum(d_yx, y)) / jnp.maximum(ny, 1)

    return _distance_metric(combine, pred, labels, on, normalize, spacing)


def modified_average_hausdorff(pred, labels, percentile: float = 95, on: str = "region",
                               normalize: bool = False, spacing: Spacing = 1.0):
    """The thesis's MAHD: ½(mean_x d_q(x,Y) + mean_y d_q(y,X)) per image.

    d_q(x,Y) is the q-th percentile *in decreasing order* of {d(x,y) : y∈Y},
    i.e. numpy's ``percentile(·, 100 − q)`` (q = 95: a robust nearest distance;
    q = 100 gives back the average Hausdorff distance). Exact; costs
    O(HW · H · log HW) per image (see :mod:`jaxseg.metrics.percentile_distance`).
    """
    s = _spacing(spacing)

    def combine(x, y):
        return 0.5 * (mean_percentile_distance(x, y, 100 - percentile, s)
                      + mean_percentile_distance(y, x, 100 - percentile, s))

    return _distance_metric(combine, pred, labels, on, normalize, spacing)
