"""Hausdorff-family metrics against brute-force NumPy pairwise distances (NHWC masks, (N, C) values)."""

import math

import chex
import jax
import numpy as np
import pytest
from scipy import ndimage

from jaxseg.metrics import surface
from jaxseg.metrics.percentile_distance import percentile_distance

H, W = 9, 11


def _masks():
    """Random masks plus the hand-made cases: empty, full, one pixel, border-touching."""
    rng = np.random.default_rng(0)
    pred = rng.random((12, H, W)) < 0.3
    lab = ndimage.binary_dilation(rng.random((12, H, W)) < 0.08, iterations=1)
    empty, full = np.zeros((H, W), bool), np.ones((H, W), bool)
    one = empty.copy(); one[4, 5] = True
    corner = empty.copy(); corner[0, :3] = True; corner[:2, 0] = True
    edge = empty.copy(); edge[:, W - 1] = True
    cases = [(empty, empty), (empty, one), (one, empty), (full, one), (one, full), (full, full),
             (one, one), (corner, edge), (edge, corner), (one, corner), (full, empty), (corner, corner)]
    pred = np.concatenate([pred, np.stack([c[0] for c in cases])])
    lab = np.concatenate([lab, np.stack([c[1] for c in cases])])
    return pred, lab


def _nhwc(*masks):
    """(N, H, W) planes as (N, H, W, 1) masks: the public layout."""
    return tuple(m[..., None] for m in masks)


def _boundary_ref(m):
    return m & ~ndimage.binary_erosion(m, structure=ndimage.generate_binary_structure(2, 1),
                                       border_value=0)


def _reference(pred, lab, name, on, spacing, normalize):
    """Per-image values from the full pairwise distance matrix (float64)."""
    diag = math.hypot(H * spacing[0], W * spacing[1])
    out = []
    for p, y in zip(pred, lab):
        if on == "boundary":
            p, y = _boundary_ref(p), _boundary_ref(y)
        xs, ys = np.argwhere(p) * spacing, np.argwhere(y) * spacing
        if len(xs) == 0 or len(ys) == 0:
            v = 0.0 if len(xs) == len(ys) == 0 else diag
        else:
            d = np.linalg.norm(xs[:, None] - ys[None], axis=-1)
            dxy, dyx = d.min(1), d.min(0)
            v = {"hausdorff": lambda: max(dxy.max(), dyx.max()),
                 "hausdorff95": lambda: max(np.percentile(dxy, 95), np.percentile(dyx, 95)),
                 "average_hausdorff": lambda: 0.5 * (dxy.mean() + dyx.mean()),
                 "balanced_average_hausdorff": lambda: 0.5 * (dxy.sum() + dyx.sum()) / len(ys),
                 "modified_average_hausdorff": lambda: 0.5 * (np.percentile(d, 5, axis=1).mean()
                                                               + np.percentile(d, 5, axis=0).mean()),
                 }[name]()
        out.append(v / diag if normalize else v)
    return np.asarray(out, np.float32)


NAMES = ("hausdorff", "hausdorff95", "average_hausdorff", "balanced_average_hausdorff",
         "modified_average_hausdorff")


@pytest.mark.parametrize("on,spacing,normalize", [("region", (1.0, 1.0), False),
                                                  ("boundary", (0.7, 1.3), True),
                                                  ("region", (2.0, 0.5), False)])
def test_matches_bruteforce(on, spacing, normalize):
    pred, lab = _masks()

    @jax.jit
    def all_metrics(p, y):
        return [getattr(surface, n)(p, y, on=on, normalize=normalize, spacing=spacing) for n in NAMES]

    for name, got in zip(NAMES, all_metrics(*_nhwc(pred, lab))):
        got = np.asarray(got)
        assert got.shape == (len(pred), 1) and got.dtype == np.float32
        got = got[:, 0]
        assert np.all(np.isfinite(got))
        chex.assert_trees_all_close(got, _reference(pred, lab, name, on, spacing, normalize),
                                    rtol=1e-5, atol=1e-5, custom_message=name)


def test_empty_rule_values():
    pred, lab = _masks()
    diag = math.hypot(H, W)
    fn = jax.jit(surface.hausdorff95, static_argnames=("on", "normalize", "spacing"))
    pred, lab = _nhwc(pred, lab)
    got = np.asarray(fn(pred, lab, normalize=True))[12:15, 0]
    chex.assert_trees_all_close(got, np.array([0.0, 1.0, 1.0], np.float32), rtol=1e-6)
    got = np.asarray(fn(pred, lab))[[12, 13, 22], 0]
    chex.assert_trees_all_close(got, np.array([0.0, diag, diag], np.float32), rtol=1e-6)


def test_boundary_matches_scipy_erosion():
    pred, _ = _masks()
    got = np.asarray(jax.jit(surface.boundary)(pred[..., None]))
    np.testing.assert_array_equal(got[..., 0], np.stack([_boundary_ref(m) for m in pred]))


def test_masked_percentile_matches_numpy():
    rng = np.random.default_rng(3)
    v = rng.random((5, 7, 8)).astype(np.float32)
    m = rng.random((5, 7, 8)) < 0.4
    m[0] = False; m[0, 2, 2] = True  # a single element
    for q in (95, 50, 99.5, 100):
        got = np.asarray(jax.jit(surface._masked_percentile, static_argnums=2)(v, m, q))
        chex.assert_trees_all_close(got, np.array([np.percentile(a[b], q) for a, b in zip(v, m)],
                                                  np.float32), rtol=1e-6)


def test_percentile_distance_every_pixel():
    rng = np.random.default_rng(4)
    y = rng.random((2, 6, 7)) < 0.35
    y[1] = False; y[1, 0, 6] = True
    got = np.asarray(jax.jit(percentile_distance, static_argnums=(1, 2))(y[..., None], 5, (1.5, 1.0)))
    assert got.shape == y.shape + (1,)
    got = got[..., 0]
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(7), indexing="ij"), -1) * (1.5, 1.0)
    for b in range(2):
        d = np.linalg.norm(grid[:, :, None] - (np.argwhere(y[b]) * (1.5, 1.0))[None, None], axis=-1)
        chex.assert_trees_all_close(got[b], np.percentile(d, 5, axis=-1).astype(np.float32),
                                    rtol=1e-5, atol=1e-6)
