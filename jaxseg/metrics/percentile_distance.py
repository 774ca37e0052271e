"""Exact percentiles of all pairwise distances from each pixel to a point set (for the MAHD).

The thesis's modified average Hausdorff distance replaces d(x, Y) = min_y d(x, y)
by a percentile of the whole multiset {d(x, y) : y ∈ Y}. Brute force is
O(|X|·|Y|) distances *and* a selection per x (2.7·10⁸ pairs per direction for a
256² lung mask). Two exact kernels compute the order statistics
d₍ₖ₎(x) = min{ s : N_x(s) ≥ k }, N_x(s) = #{y ∈ Y : ‖x − y‖² ≤ s}:

``method="sweep"`` (the default on a CPU) — every pixel at once, distances in increasing order.
  The lattice offsets o = (a·s_h, b·s_w), |a| < H, |b| < W, are sorted once per image
  shape by their float32 squared length t(o) (NumPy, cached; one quadrant a, b ≥ 0 is
  stored, each entry standing for its mirror images ±a, ±b of the same length). Walking
  that list, the count of Y pixels within t of x grows by Y[x + o] at each offset; the
  first offset at which the count reaches k has t(o) = d₍ₖ₎(x)² exactly (offsets of equal
  length are counted in any order, so where a step ends does not matter). Per offset that
  is one shifted slice of the (zero-padded) mask added to a running count of the whole
  image: dense int16 additions and compares, ``SWEEP_BLOCK`` entries unrolled into one
  fused loop per step, no gathers. Two things keep the walk short:

  * it starts at the full-lattice bound: N_x(t) ≤ #{o : t(o) ≤ t}, so d₍ₖ₎(x)² is at
    least the k-th smallest offset length (the exact value wherever the disk of that
    radius lies inside Y and the image: most interior pixels of a region mask are done
    by the first step), with the count of Y pixels below that length taken from row
    prefix counts (O(HW·√t) additions);
  * it stops as soon as every *query* pixel (the x whose values are needed: X of the
    MAHD) has both ranks. Stragglers far from Y would make the walk long: once at most
    ``STRAGGLERS`` per plane are left and the walk has gone on for as long as the binary
    search of that many pixels takes, they are compacted and finished by the binary
    search below (a ski-rental rule: at most about twice the cheaper of the two).

  On a CPU each plane is swept on its own (``lax.map``: it stops when its own pixels are
  done, and its working set stays in cache). A 256² lung-like pair (two ellipses, ~25 %
  of the image) needs ~40 steps per direction (radius 16 → 30, ≈ 2 700 offsets):
  34 ms for both directions on a loaded 2-core EPYC, against 6.3 s for the bisect kernel
  and 3.2 s for a NumPy float32 brute force (``bench/bench_mahd.py``). Random masks (no
  interior, far corners) need ~4× the steps.

``method="bisect"`` — the earlier kernel, per pixel: binary search over the sorted table
  T = {(a·s_h)² + (b·s_w)²} of achievable squared distances (⌈log₂|T|⌉ + 1 steps), each
  step counting N_x(s) row by row from row prefix counts of Y (two gathers per row):
  O(HW·H·log|T|) per image whatever the data (seconds per 256² image on a CPU). Also the
  sweep's fallback, on the compacted stragglers.

``method="auto"`` (default) — the sweep on a CPU, the binary search on an accelerator. On an
  H200 the binary search is the faster one: 6 ms for one 256² pair (both directions), 44 ms
  for 8, whatever the masks; the sweep's 100–300 small loop steps cost 5 ms (lungs) to 60 ms
  (random masks, stragglers) for one pair, 56–59 ms for 8, and 8–10 s to compile.

Both compare the same float32 sums (a·s_h)² + (b·s_w)² (equal to NumPy's float32
pairwise squared distances), so the order statistics are exact and the two methods agree
bit for bit (tests/test_mahd_fast.py). Percentiles use numpy's 'linear' rule.

Shapes (docs/architecture.md, NHWC): the public functions take (N, H, W, C)
masks, one plane per image and class; other shapes raise ``ValueError``. The
underscore kernels work on stacked planes (B, H, W).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.ops.shapes import check_nhwc

METHODS = ("auto", "sweep", "bisect")  # auto: sweep on a CPU, bisect on an accelerator
# Quadrant entries (≤ 4 offsets each) per step of the sweep's loop, unrolled into one fused loop
# (≤ 63: a step's count and crossings are packed into 8-bit fields). 16 and 32 run alike on XLA:CPU;
# 16 compiles faster and overshoots less at the end. The counts are int16: XLA:CPU's YNNPACK fusion
# (jaxseg.runtime) takes int8 additions out of the fused loop (9× slower), not int16 ones.
SWEEP_BLOCK = 16
STRAGGLERS = 128  # per plane: at most this many unfinished query pixels go to the binary search
NO_FALLBACK_PIXELS = 128 * 128  # up to this H·W the whole walk is cheap (< 0.1 s): no fallback is compiled
# Ski-rental price of the fallback, in sweep steps per straggler: measured on XLA:CPU (2-core EPYC,
# 256²) a binary-search pixel (both ranks, all rows: 43 µs) costs about a fifth of a sweep step of one
# 256² plane (0.2 ms); scaled by H·log|T| / (H·W) for other shapes.
_FALLBACK_STEPS_PER_PIXEL_256 = 1 / 5
_TABLE_256 = 21_860  # |T| for 256², unit spacing


def distance_tables(h: int, w: int, spacing: tuple[float, float]):
    """float32 (dy², dx², T): squared row offsets, column offsets, sorted unique sums."""
    sh, sw = (np.float32(v) for v in spacing)
    dy2 = (np.arange(h, dtype=np.float32) * sh) ** 2
    dx2 = (np.arange(w, dtype=np.float32) * sw) ** 2
    table = np.unique((dy2[:, None] + dx2[None, :]).astype(np.float32))
    return dy2.astype(np.float32), dx2.astype(np.float32), table


@functools.lru_cache(maxsize=16)
def _sweep_order(h: int, w: int, spacing: tuple[float, float]):
    """The sweep's order of the quadrant offsets (a, b), 0 ≤ a < H, 0 ≤ b < W (NumPy, cached per shape).

    Returns (keys, lengths, copies): int32 keys a·W + b sorted by the float32 length
    t = (a·s_h)² + (b·s_w)² (stable), followed by ``SWEEP_BLOCK`` dummy keys H·W (a = H:
    every copy reads the zero padding, so a step may run past the end); float32 t of the
    H·W real keys (non-decreasing); int32 running count of the offsets they stand for
    (±a, ±b: 1, 2 or 4 each).
    """
    dy2, dx2, _ = distance_tables(h, w, spacing)
    t = (dy2[:, None] + dx2[None, :]).ravel()
    keys = np.argsort(t, kind="stable").astype(np.int32)
    a, b = keys // w, keys % w
    copies = np.cumsum((1 + (a > 0)) * (1 + (b > 0)), dtype=np.int64).astype(np.int32)
    return np.concatenate([keys, np.full(SWEEP_BLOCK, h * w, np.int32)]), t[keys], copies


def _row_chunk(batch: int, h: int, w: int, budget: int) -> int:
    return max(1, min(h, budget // max(1, batch * h * w)))


def _row_prefix(targets, rows_pad: int):
    """(B, H + rows_pad, W + 1) int32: column prefix counts of each row, zero rows appended."""
    cs = jnp.cumsum(targets.astype(jnp.int32), axis=-1)
    return jnp.pad(cs, ((0, 0), (0, rows_pad), (1, 0)))


def _neighbour_count(s, prefix, dy2, dx2, chunk: int, plane, row, col):
    """N_x(s) = #{y : (Δrow·s_h)² + (Δcol·s_w)² ≤ s} for the pixels x = (plane, row, col), float32-consistent.

    ``plane``, ``row``, ``col`` int32 arrays broadcastable to ``s``'s shape (the whole
    grid: (B,1,1), (1,H,1), (1,1,W); or a list of pixels); ``s`` float32 radii²;
    ``prefix`` (B, Hp, W+1) from :func:`_row_prefix`, Hp a multiple of ``chunk``.
    """
    _, hp, w1 = prefix.shape
    h, w = len(dy2), w1 - 1
    flat = prefix.reshape(-1)
    dy2_pad = jnp.concatenate([jnp.asarray(dy2), jnp.full((hp,), jnp.inf, jnp.float32)])
    sw_inv = 1.0 / math.sqrt(float(dx2[1])) if w > 1 else 1.0
    dx2 = jnp.asarray(dx2)
    shape = jnp.broadcast_shapes(jnp.shape(s), plane.shape, row.shape, col.shape)
    row, col, base0 = row[..., None], col[..., None], plane[..., None] * hp

    def body(k, total):
        r = k * chunk + jnp.arange(chunk, dtype=jnp.int32)  # (rc,)
        dy = dy2_pad[jnp.abs(row - r)]  # +inf on padded rows
        dy = jnp.where(r < h, dy, jnp.inf)
        sx = s[..., None]
        est = jnp.floor(jnp.sqrt(jnp.maximum(sx - jnp.where(jnp.isinf(dy), 0.0, dy), 0.0)) * sw_inv)
        est = jnp.clip(est.astype(jnp.int32), 0, w - 1)
        up = jnp.minimum(est + 1, w - 1)
        ok_up = (est + 1 <= w - 1) & (dy + dx2[up] <= sx)
        ok_cur = dy + dx2[est] <= sx
        half = est + ok_up.astype(jnp.int32) - (~ok_cur).astype(jnp.int32)  # -1: no column
        lo = jnp.clip(col - half, 0, w)
        hi = jnp.clip(col + half + 1, 0, w)
        base = (base0 + r) * w1
        cnt = flat[base + hi] - flat[base + lo]
        return total + jnp.sum(jnp.where(half >= 0, cnt, 0), axis=-1)

    return jax.lax.fori_loop(0, hp // chunk, body, jnp.zeros(shape, jnp.int32))


def _bisect_sq(prefix, need, lo, hi, plane, row, col, dy2, dx2, table, chunk: int):
    """min{ t ∈ T[lo..hi] : N_x(t) ≥ need } per pixel (binary search over the table's indices)."""
    t = jnp.asarray(table)
    steps = int(math.ceil(math.log2(len(table)))) + 1

    def step(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        ge = _neighbour_count(t[mid], prefix, dy2, dx2, chunk, plane, row, col) >= need
        return jnp.where(ge, lo, mid + 1), jnp.where(ge, mid, hi)

    _, hi = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return t[hi]


def _kth_smallest_sq_distance(targets, rank, spacing=(1.0, 1.0), budget: int = 1 << 24):
    """Squared (rank+1)-th smallest distance from every pixel to the pixels of ``targets`` (``method="bisect"``).

    ``targets`` (B, H, W) bool; ``rank`` (B,) int32, 0-based, < |targets|.
    Returns float32 (B, H, W) = min{ t ∈ T : N_x(t) ≥ rank + 1 } (binary search
    over the sorted table T of achievable squared distances).
    """
    b, h, w = targets.shape
    dy2, dx2, table = distance_tables(h, w, spacing)
    chunk = _row_chunk(b, h, w, budget)
    prefix = _row_prefix(targets, -(-h // chunk) * chunk - h)
    i32 = lambda n, shape: jnp.arange(n, dtype=jnp.int32).reshape(shape)
    need = (rank + 1)[:, None, None]
    lo = jnp.zeros((b, h, w), jnp.int32)
    hi = jnp.full((b, h, w), len(table) - 1, jnp.int32)
    return _bisect_sq(prefix, need, lo, hi, i32(b, (b, 1, 1)), i32(h, (1, h, 1)), i32(w, (1, 1, w)),
                      dy2, dx2, table, chunk)


def _count_below(targets, t0, dy2, dx2):
    """#{y ∈ Y : ‖x − y‖² < t0} for every pixel, from row prefix counts: O(HW·(rows within √t0))."""
    b, h, w = targets.shape
    cs = jnp.cumsum(targets.astype(jnp.int32), axis=-1)
    # q[..., c + w + 1] = #Y in columns ≤ c of the row (0 left of the image, the row total right of it)
    q = jnp.pad(jnp.pad(cs, ((0, 0), (h, h), (w + 1, 0))), ((0, 0), (0, 0), (0, w)), mode="edge")
    half = jnp.sum(jnp.asarray(dy2)[:, None] + jnp.asarray(dx2)[None, :] < t0, axis=1) - 1  # (H,); -1: none
    reach = jnp.sum(half >= 0) - 1  # rows |Δ| ≤ reach have a column within reach

    def row(dy, total):
        hw = half[jnp.abs(dy)]
        upper = jax.lax.dynamic_slice(q, (0, h + dy, w + 1 + hw), (b, h, w))
        lower = jax.lax.dynamic_slice(q, (0, h + dy, w - hw), (b, h, w))
        return total + upper - lower

    return jax.lax.fori_loop(-reach, reach + 1, row, jnp.zeros((b, h, w), jnp.int32))


def _order_statistics_sq(targets, queries, need0, need1, spacing=(1.0, 1.0), budget: int = 1 << 24,
                         stragglers: int | None = None, patience: int | None = None,
                         planes_per_sweep: int | None = None):
    """Squared need0-th and need1-th smallest distances to ``targets`` at the ``queries`` pixels (``method="sweep"``).

    ``targets``, ``queries`` (B, H, W) bool; ``need0 ≤ need1`` (B,) int32, 1-based, ≤ |targets|.
    Returns two float32 (B, H, W), exact at query pixels of planes with a non-empty
    ``targets``, arbitrary (finite) elsewhere.

    ``planes_per_sweep`` planes go through one sweep together (it runs until the slowest
    is done); default 1 on a CPU (each plane stops on its own and its working set,
    ~6 bytes per pixel, stays in cache), all B on an accelerator. ``stragglers`` (per
    plane; default ``STRAGGLERS``, or 0 — no hand-over, nothing extra to compile — for images
    of at most ``NO_FALLBACK_PIXELS``) and ``patience`` (sweep steps; default: as long as
    the binary search of that many pixels takes) set the hand-over to the binary search.
    """
    bsz, h, w = targets.shape
    if stragglers is None:
        stragglers = STRAGGLERS if h * w > NO_FALLBACK_PIXELS else 0
    group = planes_per_sweep or (1 if jax.default_backend() == "cpu" else bsz)
    sweep = functools.partial(_sweep, spacing=spacing, budget=budget, stragglers=stragglers, patience=patience)
    if group >= bsz:
        return sweep(targets, queries, need0, need1)
    pad = -bsz % group
    grouped = [jnp.pad(v, [(0, pad)] + [(0, 0)] * (v.ndim - 1)).reshape((-1, group) + v.shape[1:])
               for v in (targets, queries, need0, need1)]
    s0, s1 = jax.lax.map(lambda args: sweep(*args), tuple(grouped))
    return tuple(v.reshape((-1,) + v.shape[2:])[:bsz] for v in (s0, s1))


def _bisect_stragglers(targets, pending, need0, need1, limit: int, budget: int, dy2, dx2, table, s):
    """The sweep's stragglers — the ``pending`` pixels (at most ``limit``) — both ranks by binary search
    over the whole table; ``s`` = (s0, s1), the sweep's values, returned with theirs filled in."""
    s0, s1 = s
    bsz, h, w = targets.shape
    flat = pending.reshape(-1)
    idx = jnp.nonzero(flat, size=limit, fill_value=flat.size)[0].astype(jnp.int32)
    pl, rest = idx // (h * w), idx % (h * w)
    pl = jnp.minimum(pl, bsz - 1)
    chunk = _row_chunk(2 * limit, 1, 1, budget)
    prefix = _row_prefix(targets, -(-h // chunk) * chunk - h)
    two = lambda v: jnp.concatenate([v, v])
    need = jnp.concatenate([need0[pl], need1[pl]])
    lo = jnp.zeros((2 * limit,), jnp.int32)
    hi = jnp.full((2 * limit,), len(table) - 1, jnp.int32)
    got = _bisect_sq(prefix, need, lo, hi, two(pl), two(rest // w), two(rest % w), dy2, dx2, table, chunk)
    s0 = s0.reshape(-1).at[idx].set(got[:limit], mode="drop").reshape(bsz, h, w)
    s1 = s1.reshape(-1).at[idx].set(got[limit:], mode="drop").reshape(bsz, h, w)
    return s0, s1


def _sweep(targets, queries, need0, need1, spacing, budget: int, stragglers: int, patience: int | None):
    """:func:`_order_statistics_sq` of planes swept together."""
    bsz, h, w = targets.shape
    dy2, dx2, table = distance_tables(h, w, spacing)
    keys, ts, copies = (jnp.asarray(v) for v in _sweep_order(h, w, spacing))
    entries = h * w

    n = jnp.sum(targets, axis=(1, 2), dtype=jnp.int32)
    q = queries & ((n > 0) & jnp.any(queries, axis=(1, 2)))[:, None, None]
    active = jnp.any(q, axis=(1, 2))
    # full-lattice bound: d₍ₖ₎² ≥ the k-th smallest offset length; start at the first entry of that length
    bound = ts[jnp.minimum(jnp.searchsorted(copies, need0, side="left"), entries - 1)]
    start = jnp.searchsorted(ts, jnp.where(active, bound, jnp.inf), side="left").astype(jnp.int32)
    p0 = jnp.min(start)
    count0 = _count_below(targets, jnp.where(p0 < entries, ts[jnp.minimum(p0, entries - 1)], 0.0), dy2, dx2)

    ypad = jnp.pad(targets.astype(jnp.int16), ((0, 0), (h, h), (w, w)))
    n0, n1 = need0[:, None, None], need1[:, None, None]
    unset = jnp.full((bsz, h, w), entries - 1, jnp.int32)
    limit = stragglers * bsz
    if patience is None:  # the binary search's cost per pixel ∝ H·log|T|, a sweep step's ∝ B·H·W
        per_pixel = _FALLBACK_STEPS_PER_PIXEL_256 * (256 / w) * math.log2(len(table)) / math.log2(_TABLE_256)
        patience = int(math.ceil(limit * per_pixel / bsz))

    def remaining(count):
        return jnp.sum(q & (count < n1), dtype=jnp.int32)

    def settle(p, count, i0, i1, packed):
        """Apply the step that ended at entry p: its count, and where ranks were reached in it."""
        x0, x1 = (packed >> 8) & 0xFF, packed >> 16  # entries from the crossing to the step's end; 0: none
        return count + (packed & 0xFF), jnp.where(x0 > 0, p - x0, i0), jnp.where(x1 > 0, p - x1, i1)

    def cond(state):
        p, count, _, _, packed, waited = state
        left = remaining(count + (packed & 0xFF))
        return (left > 0) & (p < entries) & ((left > limit) | (waited < patience))

    def body(state):
        p, count, i0, i1, packed, waited = state
        count, i0, i1 = settle(p, count, i0, i1, packed)
        # counts still missing, capped above what one step can add (4 offsets per entry)
        r0 = jnp.clip(n0 - count, 0, 4 * SWEEP_BLOCK + 1).astype(jnp.int16)
        r1 = jnp.clip(n1 - count, 0, 4 * SWEEP_BLOCK + 1).astype(jnp.int16)
        zero = jnp.zeros((bsz, h, w), jnp.int16)
        run, c0, c1 = zero, zero, zero
        for e in range(SWEEP_BLOCK):
            key = keys[p + e]
            a, b = key // w, key % w
            rows = (a, jnp.where(a > 0, -a, h))  # the mirror copy of a = 0 reads the zero padding
            cols = (b, jnp.where(b > 0, -b, w))
            for ra in rows:
                for cb in cols:
                    run = run + jax.lax.dynamic_slice(ypad, (0, h + ra, w + cb), (bsz, h, w))
            c0 = c0 + (run < r0).astype(jnp.int16)
            c1 = c1 + (run < r1).astype(jnp.int16)
        x0 = jnp.where(r0 > 0, SWEEP_BLOCK - c0, 0).astype(jnp.int32)
        x1 = jnp.where(r1 > 0, SWEEP_BLOCK - c1, 0).astype(jnp.int32)
        # The chain of slices has this one packed array as its only consumer, so XLA computes it
        # once; with three outputs it fused the whole chain into each (3× the work; an optimization
        # barrier does not stop that on XLA:CPU). run ≤ 4·SWEEP_BLOCK < 256, x0, x1 ≤ SWEEP_BLOCK.
        packed = run.astype(jnp.int32) | (x0 << 8) | (x1 << 16)
        waited = waited + (remaining(count) <= limit).astype(jnp.int32)
        return p + SWEEP_BLOCK, count, i0, i1, packed, waited

    init = (p0, count0, unset, unset, jnp.zeros((bsz, h, w), jnp.int32), jnp.int32(0))
    p_end, count, i0, i1, packed, _ = jax.lax.while_loop(cond, body, init)
    count, i0, i1 = settle(p_end, count, i0, i1, packed)
    left = remaining(count)
    s0, s1 = ts[i0], ts[i1]

    pending = q & (count < n1)
    finish = functools.partial(_bisect_stragglers, targets, pending, need0, need1, limit, budget, dy2, dx2, table)
    return jax.lax.cond(left > 0, finish, lambda s: s, (s0, s1)) if limit else (s0, s1)


def percentile_distance(targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24,
                        method: str = "auto"):
    """numpy's linear ``percentile({‖x − y‖ : y ∈ targets}, q)`` for every pixel x, per image and class.

    ``targets`` (N, H, W, C) bool; returns float32 (N, H, W, C). Position
    a = q/100·(n − 1), n = |targets| of the plane; value as :func:`_percentile_distance`.
    Arbitrary (finite) where a plane of ``targets`` is empty. ``method``: "auto" (the
    default: "sweep" on a CPU, "bisect" on an accelerator), "sweep" or "bisect" — the
    same values (see the module doc).
    """
    n, h, w, c = check_nhwc("percentile_distance", targets=targets)
    planes = jnp.moveaxis(jnp.asarray(targets, bool), -1, 1).reshape(n * c, h, w)
    d = _percentile_distance(planes, q, spacing, budget, method=method)
    return jnp.moveaxis(d.reshape(n, c, h, w), 1, -1)


def _percentile_distance(targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24,
                         queries=None, method: str = "auto"):
    """:func:`percentile_distance` of stacked planes ``targets`` (B, H, W) bool.

    Position a = q/100·(n − 1), n = |targets|;
    value = d₍⌊a⌋₎ + (a − ⌊a⌋)(d₍⌊a⌋+1₎ − d₍⌊a⌋₎) from two exact order statistics.
    ``queries`` (B, H, W) bool: the pixels whose values are needed (default all; ``method="sweep"``
    stops once they are done, elsewhere the value is arbitrary). Arbitrary (finite) where
    ``targets`` is empty.
    """
    if method not in METHODS:
        raise ValueError(f"percentile_distance: method must be one of {METHODS}; got {method!r}")
    if method == "auto":
        method = "sweep" if jax.default_backend() == "cpu" else "bisect"
    spacing = tuple(float(v) for v in spacing)
    frac = Fraction(str(q)) / 100
    n = jnp.sum(targets, axis=(-2, -1), dtype=jnp.int32)
    num = frac.numerator * jnp.maximum(n - 1, 0)
    fl, rem = num // frac.denominator, num % frac.denominator
    ranks = jnp.stack([fl, jnp.minimum(fl + 1, jnp.maximum(n - 1, 0))])  # (2, B)
    if method == "bisect":
        sq = jax.vmap(lambda r: _kth_smallest_sq_distance(targets, r, spacing, budget // 2))(ranks)
    else:
        if queries is None:
            queries = jnp.ones(targets.shape, bool)
        sq = _order_statistics_sq(targets, jnp.asarray(queries, bool), ranks[0] + 1, ranks[1] + 1, spacing, budget)
    d0, d1 = jnp.sqrt(sq[0]), jnp.sqrt(sq[1])
    weight = (rem.astype(jnp.float32) / frac.denominator)[:, None, None]
    return d0 + weight * (d1 - d0)


def mean_percentile_distance(queries, targets, q: float, spacing=(1.0, 1.0),
                             budget: int = 1 << 24, method: str = "auto"):
    """mean_{x ∈ queries} percentile_q{‖x − y‖ : y ∈ targets} per image and class: float32 (N, C).

    ``queries``, ``targets``: (N, H, W, C) bool masks (other shapes raise
    ``ValueError``). 0 where ``queries`` is empty; arbitrary (finite) where
    ``targets`` is empty. ``method``: "auto", "sweep" or "bisect" (same values; see
    :func:`percentile_distance`).
    """
    check_nhwc("mean_percentile_distance", queries=queries, targets=targets)
    to_planes = lambda m: jnp.moveaxis(jnp.asarray(m, bool), -1, 1)  # (N, C, H, W)
    return _mean_percentile_distance(to_planes(queries), to_planes(targets), q, spacing, budget, method)


def _mean_percentile_distance(queries, targets, q: float, spacing=(1.0, 1.0), budget: int = 1 << 24,
                              method: str = "auto"):
    """:func:`mean_percentile_distance` of (..., H, W) planes: shape (...)."""
    lead, (h, w) = queries.shape[:-2], queries.shape[-2:]
    x = jnp.asarray(queries, bool).reshape(-1, h, w)
    y = jnp.asarray(targets, bool).reshape(-1, h, w)
    d = _percentile_distance(y, q, spacing, budget, queries=x, method=method)
    total = jnp.sum(jnp.where(x, d, 0.0), axis=(-2, -1))
    mean = total / jnp.maximum(jnp.sum(x, axis=(-2, -1)), 1)
    return mean.reshape(lead)
