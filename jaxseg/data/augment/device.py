"""The training augmentation inside the jitted train step (``config.data.augment_on='device'``).

The same transforms as the tf.data path (``jaxseg.data.augment.affine``: flips, rotation,
random crop / random pick, brightness, contrast), resampled by
``jaxseg.ops.warp.projective_warp`` (TF's bilinear / nearest semantics). Random
numbers are ``jax.random.uniform(fold_in(key(seed), step), (B, 7))`` — a function
of (seed, global step), so resumed runs see the same augmentation, and trials
(which share the seed) see the same data. The stream differs from the host
path's ``tf.random`` one, so host and device runs are different (equally valid)
random draws. No TensorFlow is imported.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxseg.data.augment.affine import (NEAREST_KEYS, NUM_UNIFORMS, SPATIAL_KEYS, AugmentConfig, adjust_photometry,
                                affine_transforms)
from jaxseg.ops.warp import projective_warp

__all__ = ["augment_on_device", "make_device_augment"]

_STREAM = 0xA06  # separates augmentation keys from the init/dropout keys of the same seed


def augment_on_device(batch: dict, key: jax.Array, cfg: AugmentConfig) -> dict:
    """Augments a dict batch of NHWC float arrays with ``key`` (pure; jit/vmap-able)."""
    image = batch["image"]
    height, width = int(image.shape[1]), int(image.shape[2])
    out_h, out_w = cfg.output_size(height, width)
    u = jax.random.uniform(key, (image.shape[0], NUM_UNIFORMS), jnp.float32)
    out = dict(batch)
    if cfg.geometric:
        transforms = affine_transforms(u, height, width, out_h, out_w, cfg, jnp)
        for name in SPATIAL_KEYS:
            if name in out:
                warped = projective_warp(out[name], transforms, (out_h, out_w), nearest=name in NEAREST_KEYS)
                out[name] = warped.astype(out[name].dtype)
    if cfg.photometric:
        out["image"] = adjust_photometry(out["image"], u, cfg, jnp)
    return out


def make_device_augment(cfg: AugmentConfig | None, seed: int) -> Callable | None:
    """``fn(batch, step) -> batch`` for ``make_train_step(augment=...)``, or None unless
    ``cfg`` (a source's ``augment_config``) asks for augmentation on the device."""
    if cfg is None or not cfg.augment or cfg.augment_on != "device":
        return None

    def augment(batch: dict, step: jax.Array) -> dict:
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), _STREAM), step)
        return augment_on_device(batch, key, cfg)

    return augment
