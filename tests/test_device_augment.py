"""On-device augmentation: the JAX warp and transforms equal TensorFlow's, and training uses them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from jaxseg.data.augment.affine import AugmentConfig, affine_transforms
from jaxseg.data.augment.host import TF_OPS
from jaxseg.data.augment.device import make_device_augment
from jaxseg.ops.warp import projective_warp
from jaxseg.training import train_and_evaluate
from tests.helpers import tiny_config


def _tf_warp(images, transforms, out_shape, nearest):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=list(out_shape), fill_value=0.0,
        interpolation="NEAREST" if nearest else "BILINEAR", fill_mode="CONSTANT").numpy()


@pytest.mark.parametrize("nearest", [False, True])
@pytest.mark.parametrize("out_shape", [(24, 24), (50, 30)])
def test_warp_equals_tensorflow_on_random_projective_maps(nearest, out_shape):
    rng = np.random.default_rng(out_shape[1] + nearest)
    images = rng.uniform(size=(5, 40, 36, 2)).astype(np.float32)
    transforms = rng.normal(size=(5, 8)).astype(np.float32)
    transforms[:, 2] *= 10  # shifts that move part of the output outside the image
    transforms[:, 5] *= 10
    transforms[:, 6:] *= 0.01  # mild perspective
    transforms[0] = [1, 0, 0.5, 0, 1, -0.5, 0, 0]  # exact halves: nearest rounds them away from zero
    ours = np.asarray(jax.jit(projective_warp, static_argnums=(2, 3))(images, transforms, out_shape, nearest))
    np.testing.assert_allclose(ours, _tf_warp(images, transforms, out_shape, nearest), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cfg", [
    AugmentConfig(augment=True, flips="both", rotation_limit=180.0, crop_size=24, random_pick=True),
    AugmentConfig(augment=True, flips="horizontal", rotation_limit=10.0),
    AugmentConfig(augment=True, flips="vertical", crop_size=17),
])
def test_transforms_equal_the_tf_path(cfg):
    u = np.random.default_rng(3).uniform(size=(64, 7)).astype(np.float32)
    out_h, out_w = cfg.output_size(40, 36)
    host = affine_transforms(tf.constant(u), 40, 36, out_h, out_w, cfg, TF_OPS).numpy()
    device = np.asarray(affine_transforms(jnp.asarray(u), 40, 36, out_h, out_w, cfg, jnp))
    np.testing.assert_allclose(device, host, atol=1e-5, rtol=1e-6)


def test_device_augment_depends_on_seed_and_step_only():
    data = AugmentConfig(augment=True, augment_on="device", crop_size=16, random_pick=True,
                         rotation_limit=45.0, flips="both")
    batch = {"image": np.random.default_rng(0).uniform(size=(4, 24, 24, 1)).astype(np.float32),
             "mask": np.zeros((4, 24, 24, 1), np.float32)}
    fn = jax.jit(make_device_augment(data, seed=7))
    a, b, c = fn(batch, jnp.int32(3)), fn(batch, jnp.int32(3)), fn(batch, jnp.int32(4))
    assert a["image"].shape == (4, 16, 16, 1) and a["mask"].dtype == jnp.float32
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])
    assert make_device_augment(AugmentConfig(augment=True, augment_on="host"), 0) is None
    assert make_device_augment(AugmentConfig(augment=False, augment_on="device"), 0) is None
    assert make_device_augment(None, 0) is None


def test_training_with_device_augmentation_resumes_exactly(tmp_path):
    c = tiny_config(epochs=2)
    c.data.image_size = 48
    c.data.update(dict(augment=True, augment_on="device", crop_size=32, random_pick=True, rotation_limit=90.0,
                       flips="horizontal", brightness=0.1))
    full = train_and_evaluate(c, tmp_path / "full")
    c1 = tiny_config(epochs=1)
    c1.data = c.data
    train_and_evaluate(c1, tmp_path / "resumed")
    resumed = train_and_evaluate(c, tmp_path / "resumed")
    assert np.isfinite(full["train/loss"]) and full["train/nonfinite_steps"] == 0
    assert {k: v for k, v in full.items() if not k.startswith("time/")} == \
        {k: v for k, v in resumed.items() if not k.startswith("time/")}
