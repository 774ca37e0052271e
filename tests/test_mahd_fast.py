"""The MAHD's two exact kernels (jaxseg.metrics.percentile_distance): the sweep against NumPy float32 brute force.

The order statistics are compared bit for bit: the k-th smallest float32 squared distance
(a·s_h)² + (b·s_w)² from each pixel to the target set, from a full NumPy sort, against the
sweep (default), its binary-search fallback alone, and the binary-search kernel. Masks are
big enough for many sweep steps and for counts beyond what one step can add (a dense
40×40 square), with the edge cases: an empty plane, one pixel, a far straggler.
"""

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxseg.metrics import percentile_distance as PD
from jaxseg.metrics import surface


def _tables(h, w, spacing):
    dy2, dx2, _ = PD.distance_tables(h, w, spacing)
    return dy2, dx2


def _sorted_sq(y, spacing):
    """(H·W, |Y|) float32 squared distances from every pixel to Y, sorted: the reference order statistics."""
    h, w = y.shape
    dy2, dx2 = _tables(h, w, spacing)
    r, c = np.divmod(np.arange(h * w), w)
    yr, yc = np.nonzero(y)
    d2 = dy2[np.abs(r[:, None] - yr[None])] + dx2[np.abs(c[:, None] - yc[None])]  # float32 sums
    return np.sort(d2, axis=1)


def _needs(y, q):
    """1-based ranks ⌊a⌋ + 1 and ⌊a⌋ + 2 (capped at n) of numpy's linear percentile q, per plane."""
    frac = Fraction(str(q)) / 100
    n = y.sum(axis=(1, 2))
    fl = frac.numerator * np.maximum(n - 1, 0) // frac.denominator
    return (jnp.asarray(fl + 1, jnp.int32), jnp.asarray(np.minimum(fl + 2, np.maximum(n, 1)), jnp.int32))


def _blobs(shape, seed, fraction=0.25):
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.random(shape), sigma=(0, 3, 3))
    return noise > np.quantile(noise, 1 - fraction, axis=(1, 2), keepdims=True)


def _planes():
    """(B, 40, 44) targets: blobs, a dense square (counts beyond one step), random, one pixel, empty,
    blobs + a far speck."""
    h, w = 40, 44
    y = np.zeros((6, h, w), bool)
    y[0] = _blobs((1, h, w), 0)[0]
    y[1, 2:38, 3:41] = True
    y[2] = np.random.default_rng(2).random((h, w)) < 0.3
    y[3, 7, 40] = True
    y[5] = _blobs((1, h, w), 5, 0.15)[0]
    y[5, 0:2, 0:2] = True
    return y


@pytest.mark.parametrize("spacing,q,variants", [((1.0, 1.0), 5, True), ((0.7, 1.3), 50, False)])
def test_order_statistics_bit_exact(spacing, q, variants):
    y = _planes()
    queries = np.random.default_rng(1).random(y.shape) < 0.5
    queries[3] = True
    need0, need1 = _needs(y, q)
    kernels = {"sweep": functools.partial(PD._order_statistics_sq, spacing=spacing)}
    if variants:
        kernels["sweep, planes together"] = functools.partial(PD._order_statistics_sq, spacing=spacing,
                                                              planes_per_sweep=6)
        kernels["fallback only"] = functools.partial(PD._order_statistics_sq, spacing=spacing,
                                                     stragglers=40 * 44, patience=0)
    got = {name: [np.asarray(v) for v in jax.jit(k)(y, queries, need0, need1)] for name, k in kernels.items()}
    bisect = jax.jit(lambda t, r: PD._kth_smallest_sq_distance(t, r, spacing))
    old = [np.asarray(bisect(y, need - 1)) for need in (need0, need1)]
    for b in range(len(y)):
        if not y[b].any():
            continue
        ref = _sorted_sq(y[b], spacing).reshape(*y.shape[1:], -1)
        for rank, need in ((0, need0), (1, need1)):
            want = ref[..., int(need[b]) - 1]
            np.testing.assert_array_equal(old[rank][b], want, err_msg=f"bisect plane {b} rank {rank}")
            for name, (s0, s1) in got.items():
                s = (s0, s1)[rank][b]
                np.testing.assert_array_equal(s[queries[b]], want[queries[b]], err_msg=f"{name} plane {b} rank {rank}")


def test_far_straggler_goes_to_the_binary_search():
    """A lone query far from the targets: the sweep hands it over (few stragglers, no patience) — same value."""
    y = np.zeros((1, 48, 48), bool)
    y[0, 30:46, 30:46] = True
    x = np.zeros_like(y)
    x[0, 32:44, 32:44] = True
    x[0, 0, 0] = True  # ≈ 42 px away: many steps of the sweep after the others are done
    need0, need1 = _needs(y, 5)
    ref = _sorted_sq(y[0], (1.0, 1.0)).reshape(48, 48, -1)
    for kw in ({"stragglers": 1, "patience": 0}, {"stragglers": 0}):
        s0, s1 = jax.jit(functools.partial(PD._order_statistics_sq, **kw))(y, x, need0, need1)
        for s, need in ((s0, need0), (s1, need1)):
            np.testing.assert_array_equal(np.asarray(s)[0][x[0]], ref[..., int(need[0]) - 1][x[0]], err_msg=str(kw))


def _numpy_mahd(pred, lab, q=5):
    """float32 pairwise distances, numpy's percentile(·, q) per point, both directions (one plane)."""
    xs, ys = np.argwhere(pred), np.argwhere(lab)
    d = np.sqrt(((xs[:, None] - ys[None]) ** 2).sum(-1).astype(np.float32))
    return 0.5 * (np.percentile(d, q, axis=1).mean() + np.percentile(d, q, axis=0).mean())


def test_mahd_lung_like_masks_match_numpy_and_bisect():
    """Two ellipses and a perturbed copy (the bench's kind, 64²), region and boundary; every kernel agrees."""
    size = 64
    yy, xx = np.mgrid[:size, :size] / size
    lab = ((((yy - 0.5) / 0.32) ** 2 + ((xx - 0.3) / 0.14) ** 2 < 1)
           | (((yy - 0.5) / 0.3) ** 2 + ((xx - 0.7) / 0.14) ** 2 < 1))
    signed = ndimage.distance_transform_edt(lab) - ndimage.distance_transform_edt(~lab)
    noise = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((size, size)), 2)
    pred = signed + 2 * noise / noise.std() > 0
    pred[2:4, 60:62] = True  # a false positive far from the lungs
    p4, y4 = pred[None, ..., None], lab[None, ..., None]
    for on in ("region", "boundary"):
        fn = jax.jit(lambda p, y, m: surface.modified_average_hausdorff(p, y, on=on, method=m), static_argnums=2)
        sweep, bisect = float(fn(p4, y4, "sweep")[0, 0]), float(fn(p4, y4, "bisect")[0, 0])
        bp, by = (np.asarray(surface.boundary(m))[0, ..., 0] for m in (p4, y4)) if on == "boundary" else (pred, lab)
        want = _numpy_mahd(bp, by)
        assert sweep == bisect, on
        assert math.isclose(sweep, want, rel_tol=2e-6), (on, sweep, want)


def test_method_is_checked():
    with pytest.raises(ValueError, match="method"):
        PD.mean_percentile_distance(np.ones((1, 4, 4, 1), bool), np.ones((1, 4, 4, 1), bool), 5, method="fft")
