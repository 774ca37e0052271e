"""Exact EDT (jaxseg.ops.edt) against scipy.ndimage.distance_transform_edt."""

import jax
import numpy as np
import pytest
from scipy import ndimage

from jaxseg.ops import euclidean_distance_transform as edt


def _scipy(mask, spacing=(1.0, 1.0)):
    flat = mask.reshape((-1,) + mask.shape[-2:])
    return np.stack([ndimage.distance_transform_edt(m, sampling=spacing) for m in flat]).reshape(mask.shape)


@pytest.mark.parametrize("shape,spacing,p", [
    ((2, 16, 16), (1.0, 1.0), 0.7),   # random
    ((3, 7, 13), (0.5, 2.0), 0.8),    # wide, anisotropic
    ((2, 13, 7), (1.5, 0.7), 0.9),    # tall, anisotropic
    ((2, 3, 5, 9), (1.0, 1.0), 0.95),  # two batch axes, sparse background
])
def test_matches_scipy_random(shape, spacing, p):
    mask = np.random.default_rng(0).random(shape) < p
    np.testing.assert_allclose(edt(mask, spacing), _scipy(mask, spacing), rtol=1e-6, atol=1e-5)


def test_one_pixel_and_empty_and_full():
    one = np.ones((2, 9, 12), bool)
    one[0, 4, 7] = False   # one background pixel: distance to it everywhere
    one[1] = False         # empty foreground: zeros
    out = np.asarray(edt(one))
    np.testing.assert_allclose(out, _scipy(one), rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == one.shape
    full = np.ones((1, 9, 12), bool)
    np.testing.assert_allclose(edt(full, spacing=(2.0, 1.0)), np.full(full.shape, np.hypot(18.0, 12.0)), rtol=1e-6)
    np.testing.assert_allclose(edt(full, fill=-1.0), -np.ones(full.shape))


def test_jit_vmap_chunked_agree():
    mask = np.random.default_rng(1).random((3, 11, 10)) < 0.8
    ref = _scipy(mask)
    np.testing.assert_allclose(jax.jit(edt)(mask.astype(np.float32)), ref, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(lambda m: edt(m, chunk_elems=7))(mask), ref, rtol=1e-6, atol=1e-5)
