"""Exact percentiles of all pairwise distances from each pixel to a point set (for the MAHD).

The thesis's modified average Hausdorff distance replaces d(x, Y) = min_y d(x, y)
by a percentile of the whole multiset {d(x, y) : y ∈ Y}. Brute force is
O(|X|·|Y|) distances *and* a selection per x (4·10⁹ pairs per 256² image). We
compute it exactly in O(HW · H · log HW) instead:

* the k-th smallest distance from x is the smallest achievable squared distance
  s with N_x(s) = #{y ∈ Y : ‖x − y‖² ≤ s} ≥ k. Achievable squared distances are
  the finite set T = {(a·s_h)² + (b·s_w)² : 0 ≤ a < H, 0 ≤ b < W} (float32, sorted,
  built once per image shape), so a binary search over T's indices finds it in
  ⌈log₂|T|⌉ + 1 steps, for every pixel at once;
* N_x(s) is a sum over the rows r of Y of one difference of row prefix counts:
  the Y pixels of row r within s of x = (i, j) are the columns |c − j| ≤ w_r with
  w_r the largest b such that (|i − r|·s_h)² + (b·s_w)² ≤ s — O(H) per pixel.

Comparisons use the same float32 sums that build T, so the order statistics
are exact (equal to NumPy's float32 pairwise distances). Percentiles use
numpy's 'linear' rule. Memory is bounded by processing rows of Y in chunks.
Intended for accelerators: on a CPU a 256² image costs seconds.

Shapes (docs/architecture.md, NHWC): the public functions take (N, H, W, C)
masks, one plane per image and class; other shapes raise ``ValueError``. The
underscore kernels work on stacked planes (B, H, W).
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.ops.shapes import check_nhwc


def distance_tables(h: int, w: int, spacing: tuple[float, float]):
    """float32 (dy², dx², T): squared row offsets, column offsets, sorted unique sums."""
    sh, sw = (np.float32(v) for v in spacing)
    dy2 = (np.arange(h, dtype=np.float32) * sh) ** 2
    dx2 = (np.arange(w, dtype=np.float32) * sw) ** 2
    table = np.unique((dy2[:, None] + dx2[None, :]).astype(np.float32))
    return dy2.astype(np.float32), dx2.astype(np.float32), table


def _row_chunk(batch: int, h: int, w: int, budget: int) -> int:
    return max(1, min(h, budget // max(1, batch * h * w)))


def _neighbour_count(s, prefix, dy2, dx2, chunk: int):
    """N_x(s) for every pixel: #{y : (Δrow·s_h)² + (Δcol·s_w)² ≤ s[x]}, float32-consistent.

    ``s`` (B, H, W) float32 radii²; ``prefix`` (B, H, W+1) int32 row prefix
    counts of Y (padded to a multiple of ``chunk`` rows with zeros).
    """
    b, h, w = s.shape
    hp = prefix.shape[1]
    rows = jnp.arange(h, dtype=jnp.int32)
    cols = jnp.arange(w, dtype=jnp.int32)
    dy2_pad = jnp.concatenate([jnp.asarray(dy2), jnp.full((hp,), jnp.inf, jnp.float32)])
    sw_inv = 1.0 / math.sqrt(float(dx2[1])) if w > 1 else 1.0
    dx2 = jnp.asarray(dx2)

    def body(k, total):
        r = k * chunk + jnp.arange(chunk, dtype=jnp.int32)  # (rc,)
        dy = dy2_pad[jnp.abs(rows[:, None] - r[None, :])]  # (H, rc); +inf on padded rows
        dy = jnp.where(r[None, :] < h, dy, jnp.inf)[None, :, None, :]  # (1, H, 1, rc)
        sx = s[..., None]  # (B, H, W, 1)
        est = jnp.floor(jnp.sqrt(jnp.maximum(sx - jnp.where(jnp.isinf(dy), 0.0, dy), 0.0)) * sw_inv)
        est = jnp.clip(est.astype(jnp.int32), 0, w - 1)
        up = jnp.minimum(est + 1, w - 1)
        ok_up = (est + 1 <= w - 1) & (dy + dx2[up] <= sx)
        ok_cur = dy + dx2[est] <= sx
        half = est + ok_up.astype(jnp.int32) - (~ok_cur).astype(jnp.int32)  # -1: no column
        lo = jnp.clip(cols[None, None, :, None] - half, 0, w)
        hi = jnp.clip(cols[None, None, :, None] + half + 1, 0, w)
        pre = jax.lax.dynamic_slice_in_dim(prefix, k * chunk, chunk, axis=1)  # (B, rc, W+1)
        flat = pre.reshape(b, chunk * (w + 1))
        base = jnp.arange(chunk, dtype=jnp.int32) * (w + 1)

        def gather(col):
            return jnp.take_along_axis(flat, (base + col).reshape(b, -1), axis=1)

        cnt = gather(hi) - gather(lo)
        cnt = cnt.reshape(b, h, w, chunk)
        return total + jnp.sum(jnp.where(half >= 0, cnt, 0), axis=-1)

    return jax.lax.fori_loop(0, hp // chunk, body, jnp.zeros((b, h, w), jnp.int32))


def _kth_smallest_sq_distance(targets, rank, spacing=(1.0, 1.0), budget: int = 1 << 24):
    """Squared (rank+1)-th smallest distance from every pixel to the pixels of ``targets``.

    ``targets`` (B, H, W) bool; ``rank`` (B,) int32, 0-based, < |targets|.
    Returns float32 (B, H, W) = min{ t ∈ T : N_x(t) ≥ rank + 1 } (binary search
    over the sorted table T of achievable squared distances).
    """
    b, h, w = targets.shape
    dy2, dx2, table = distance_tables(h, w, spacing)
    chunk = _row_chunk(b, h, w, budget)
    hp = -(-h // chunk) * chunk
    prefix = jnp.pad(jnp.cumsum(targets.astype(jnp.int32), axis=-1), ((0, 0), (0, hp - h), (1, 0)))
    t = jnp.asarray(table)
    need = (rank + 1)[:, None, None]
    steps = int(math.ceil(math.log2(len(table)))) + 1

    def step(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        ge = _neighbour_count(t[mid], prefix, dy2, dx2, chunk) >= need
        return jnp.where(ge, lo, mid + 1), jnp.where(ge, mid, hi)

    lo = jnp.zeros((b, h, w), jnp.int32)
    hi = jnp.full((b, h, w), len(table) - 1, jnp.int32)
    _, hi = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return t[hi]


def percentile_distance(targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24):
    """numpy's linear ``percentile({‖x − y‖ : y ∈ targets}, q)`` for every pixel x, per image and class.

    ``targets`` (N, H, W, C) bool; returns float32 (N, H, W, C). Position
    a = q/100·(n − 1), n = |targets| of the plane; value as :func:`_percentile_distance`.
    Arbitrary (finite) where a plane of ``targets`` is empty.
    """
    n, h, w, c = check_nhwc("percentile_distance", targets=targets)
    planes = jnp.moveaxis(jnp.asarray(targets, bool), -1, 1).reshape(n * c, h, w)
    d = _percentile_distance(planes, q, spacing, budget)
    return jnp.moveaxis(d.reshape(n, c, h, w), 1, -1)


def _percentile_distance(targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24):
    """:func:`percentile_distance` of stacked planes ``targets`` (B, H, W) bool.

    Position a = q/100·(n − 1), n = |targets|;
    value = d₍⌊a⌋₎ + (a − ⌊a⌋)(d₍⌊a⌋+1₎ − d₍⌊a⌋₎) from two exact order statistics.
    Arbitrary (finite) where ``targets`` is empty.
    """
    frac = Fraction(str(q)) / 100
    n = jnp.sum(targets, axis=(-2, -1), dtype=jnp.int32)
    num = frac.numerator * jnp.maximum(n - 1, 0)
    fl, rem = num // frac.denominator, num % frac.denominator
    ranks = jnp.stack([fl, jnp.minimum(fl + 1, jnp.maximum(n - 1, 0))])  # (2, B)
    sq = jax.vmap(lambda r: _kth_smallest_sq_distance(targets, r, spacing, budget // 2))(ranks)
    d0, d1 = jnp.sqrt(sq[0]), jnp.sqrt(sq[1])
    weight = (rem.astype(jnp.float32) / frac.denominator)[:, None, None]
    return d0 + weight * (d1 - d0)


def mean_percentile_distance(queries, targets, q: float, spacing=(1.0, 1.0),
                             budget: int = 1 << 24):
    """mean_{x ∈ queries} percentile_q{‖x − y‖ : y ∈ targets} per image and class: float32 (N, C).

    ``queries``, ``targets``: (N, H, W, C) bool masks (other shapes raise
    ``ValueError``). 0 where ``queries`` is empty; arbitrary (finite) where
    ``targets`` is empty.
    """
    check_nhwc("mean_percentile_distance", queries=queries, targets=targets)
    to_planes = lambda m: jnp.moveaxis(jnp.asarray(m, bool), -1, 1)  # (N, C, H, W)
    return _mean_percentile_distance(to_planes(queries), to_planes(targets), q, spacing, budget)


def _mean_percentile_distance(queries, targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24):
    """:func:`mean_percentile_distance` of (..., H, W) planes: shape (...)."""
    lead, (h, w) = queries.shape[:-2], queries.shape[-2:]
    x = jnp.asarray(queries, bool).reshape(-1, h, w)
    y = jnp.asarray(targets, bool).reshape(-1, h, w)
    d = _percentile_distance(y, q, spacing, budget)
    total = jnp.sum(jnp.where(x, d, 0.0), axis=(-2, -1))
    mean = total / jnp.maximum(jnp.sum(x, axis=(-2, -1)), 1)
    return mean.reshape(lead)
