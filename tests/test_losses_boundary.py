"""Boundary loss and its on-device signed distance map (Kervadec et al. 2019; thesis §5.2.2)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxseg.losses import boundary as B

RNG = np.random.default_rng(0)


def kervadec_one_hot2dist(seg):
    """Kervadec's reference (LIVIAETS/boundary-loss, utils.one_hot2dist) on one (C, H, W) mask."""
    res = np.zeros(seg.shape, np.float64)
    for k in range(seg.shape[0]):
        posmask = seg[k].astype(bool)
        if posmask.any():
            negmask = ~posmask
            res[k] = (ndimage.distance_transform_edt(negmask) * negmask
                      - (ndimage.distance_transform_edt(posmask) - 1) * posmask)
    return res


def _reference(mask_nhwc):
    return np.stack([kervadec_one_hot2dist(m.transpose(2, 0, 1)).transpose(1, 2, 0) for m in mask_nhwc])


def test_signed_distance_map_matches_kervadec():
    mask = np.zeros((3, 12, 10, 2), np.float32)
    mask[0, 3:8, 2:6, 0] = 1          # a rectangle
    mask[1, ..., 0] = RNG.random((12, 10)) < 0.3
    mask[2, 5, 5, 0] = 1              # one pixel
    mask[..., 1] = 1.0                # full channel (no background): edt(out) = 0 everywhere
    mask[1, ..., 1] = 0.0             # empty channel: map 0
    d = jax.jit(B.signed_distance_map)(mask)
    assert d.shape == mask.shape and d.dtype == jnp.float32
    ref = _reference(mask[:, :, :, :1])
    chex.assert_trees_all_close(d[..., :1], ref, rtol=1e-6, atol=1e-5)
    assert np.all(np.asarray(d[0, 3:8, 2:6, 0]) <= 0) and float(d[0, 0, 0, 0]) > 0  # negative inside
    np.testing.assert_array_equal(np.asarray(d[1, ..., 1]), 0.0)
    full = np.asarray(d[0, ..., 1])  # Kervadec: −(edt(inside) − 1); our edt's no-background value is the diagonal
    np.testing.assert_allclose(full, -(np.hypot(12.0, 10.0) - 1.0), rtol=1e-6)


def test_boundary_loss_formula_clamp_rescale_and_dist_from_batch():
    mask = (RNG.random((2, 9, 9, 1)) < 0.3).astype(np.float32)
    logits = RNG.normal(size=mask.shape).astype(np.float32)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    dist = _reference(mask)
    chex.assert_trees_all_close(B.boundary(logits, mask), np.mean(probs * dist), rtol=1e-5)
    chex.assert_trees_all_close(B.boundary(logits, mask, clamp=2.0, rescale=4.0),
                                np.mean(probs * np.clip(dist, -2, 2) / 4.0), rtol=1e-5)
    given = np.ones_like(mask)  # a precomputed batch['dist'] wins over the mask
    chex.assert_trees_all_close(B.boundary(logits, mask, dist=given), np.mean(probs), rtol=1e-5)
    g = jax.jit(jax.grad(lambda z: B.boundary(z, mask)))(jnp.asarray(logits))
    chex.assert_trees_all_close(g, probs * (1 - probs) * dist / dist.size, rtol=1e-4, atol=1e-8)


def test_multiclass_leaves_out_background():
    labels = RNG.integers(0, 3, size=(2, 8, 8))
    mask = np.eye(3, dtype=np.float32)[labels]
    logits = RNG.normal(size=mask.shape).astype(np.float32)
    probs = np.asarray(jax.nn.softmax(logits, -1))
    dist = _reference(mask)
    chex.assert_trees_all_close(B.boundary(logits, mask), np.mean(probs[..., 1:] * dist[..., 1:]), rtol=1e-5)
    chex.assert_trees_all_close(B.boundary(logits, mask, include_background=True), np.mean(probs * dist),
                                rtol=1e-5)
