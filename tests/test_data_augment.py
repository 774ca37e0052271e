"""Seeded augmentation, in tf.data (host) and in JAX (device): exact crops, random pick inside
its patch, binary masks after rotation. Every behaviour test runs on both paths."""

import jax
import numpy as np
import pytest
import tensorflow as tf

from jaxseg.data.augment.host import AugmentConfig, augment_batch, center_crop
from jaxseg.data.augment.device import augment_on_device


def _batch(n=6, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(0.2, 1.0, (n, size, size, 1)).astype(np.float32),
            "mask": (rng.uniform(size=(n, size, size, 1)) > 0.5).astype(np.float32),
            "dist": rng.normal(size=(n, size, size, 1)).astype(np.float32)}


def _host(batch, cfg, seed=(1, 2)):
    out = augment_batch({k: tf.constant(v) for k, v in batch.items()}, tf.constant(seed, tf.int64), cfg)
    return {k: v.numpy() for k, v in out.items()}


def _device(batch, cfg, seed=(1, 2)):
    key = jax.random.fold_in(jax.random.PRNGKey(seed[0]), seed[1])
    return {k: np.asarray(v) for k, v in jax.jit(augment_on_device, static_argnums=2)(batch, key, cfg).items()}


@pytest.fixture(params=["host", "device"])
def _run(request):
    return {"host": _host, "device": _device}[request.param]


def test_unrotated_crops_and_flips_are_exact_windows(_run):
    batch = _batch()
    out = _run(batch, AugmentConfig(augment=True, crop_size=20, flips="both"))
    img, mask, dist = (batch[k] for k in ("image", "mask", "dist"))
    for i in range(len(img)):
        found = False
        for fy in (1, -1):
            for fx in (1, -1):
                src = img[i, ::fy, ::fx, 0]
                for y in range(48 - 19):
                    for x in range(48 - 19):
                        if np.array_equal(src[y:y + 20, x:x + 20], out["image"][i, ..., 0]):
                            np.testing.assert_array_equal(mask[i, ::fy, ::fx, 0][y:y + 20, x:x + 20], out["mask"][i, ..., 0])
                            np.testing.assert_array_equal(dist[i, ::fy, ::fx, 0][y:y + 20, x:x + 20], out["dist"][i, ..., 0])
                            found = True
        assert found, f"example {i} is not a flipped window of its input"


def test_random_pick_stays_inside_its_patch_and_masks_stay_binary(_run):
    n, size = 16, 64
    ones = {"image": np.ones((n, size, size, 1), np.float32), "mask": _batch(n, size)["mask"]}
    cfg = AugmentConfig(augment=True, crop_size=32, random_pick=True, rotation_limit=180.0)
    out = _run(ones, cfg)
    assert out["image"].shape == (n, 32, 32, 1)
    np.testing.assert_allclose(out["image"], 1.0, atol=1e-6)  # a pixel from outside the patch would be 0
    assert set(np.unique(out["mask"])) <= {0.0, 1.0}
    # rotations do happen: a plain rotation of a full image pads its corners with zeros
    rotated = _run(ones, AugmentConfig(augment=True, rotation_limit=180.0))
    assert (rotated["image"] == 0).any(axis=(1, 2, 3)).sum() >= n // 2


def test_seeded_and_varied(_run):
    batch, cfg = _batch(), AugmentConfig(augment=True, crop_size=24, random_pick=True, rotation_limit=90.0,
                                         flips="horizontal", brightness=0.1, contrast=0.2)
    a, b, c = _run(batch, cfg, (1, 2)), _run(batch, cfg, (1, 2)), _run(batch, cfg, (1, 3))
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])
    assert a["image"].min() >= 0 and a["image"].max() <= 1


def test_brightness_and_contrast_touch_the_image_only(_run):
    batch = _batch()
    out = _run(batch, AugmentConfig(augment=True, brightness=0.2, contrast=0.3))
    np.testing.assert_array_equal(out["mask"], batch["mask"])
    assert not np.allclose(out["image"], batch["image"])


def test_config_validation_and_center_crop():
    with pytest.raises(ValueError, match="random_pick"):
        AugmentConfig(random_pick=True)
    with pytest.raises(ValueError, match="flips"):
        AugmentConfig(flips="diagonal")
    with pytest.raises(ValueError, match="augment_on"):
        AugmentConfig(augment_on="gpu")
    arrays = {"image": np.arange(2 * 8 * 8).reshape(2, 8, 8, 1), "valid": np.ones(2)}
    crop = center_crop(arrays, 4)
    np.testing.assert_array_equal(crop["image"][0, ..., 0], arrays["image"][0, 2:6, 2:6, 0])
    assert crop["valid"] is arrays["valid"]


def test_ignored_pixels_stay_ignored_and_pixels_from_outside_are_ignored(_run):
    """pixel_weight (the ignore label) is warped nearest with fill 0: a rotation brings in weight-0 corners,
    a pixel ignored before is ignored after, and the mask is all-zero wherever the weight is 0."""
    batch = _batch()
    weight = np.ones_like(batch["mask"])
    weight[:, 10:20, 10:20] = 0.0
    batch["mask"] = batch["mask"] * weight
    batch["pixel_weight"] = weight
    cfg = AugmentConfig(rotation_limit=45.0)
    out = _run(batch, cfg)
    w = out["pixel_weight"]
    assert set(np.unique(w)) <= {0.0, 1.0}
    assert (w[:, 0, 0] == 0).mean() > 0.3  # rotated corners come from outside: ignored, not background
    assert (out["mask"][w[..., 0] == 0] == 0).all()
    same = _run(batch, AugmentConfig())  # no transform: the weights pass through unchanged
    np.testing.assert_array_equal(same["pixel_weight"], weight)
