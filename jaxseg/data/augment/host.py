"""Seeded training augmentation in tf.data: one geometric warp per example, then photometry.

The transforms and their settings are ``jaxseg.data.augment.affine`` (shared with the
on-device path, ``jaxseg.data.augment.device``); here they run on TensorFlow ops
in the input pipeline's worker threads. Images and distance maps are resampled
bilinearly, masks with nearest neighbour (so they stay {0, 1}), by
``ImageProjectiveTransformV3`` with constant 0 fill.
Every random number comes from ``tf.random.stateless_uniform`` on the per-batch
seed ``ArraySource`` passes, so an augmented epoch is a function of (seed, epoch).
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from jaxseg.data.augment.affine import (FLIPS, NEAREST_KEYS, NUM_UNIFORMS, SPATIAL_KEYS, AugmentConfig,
                                adjust_photometry, affine_transforms)

__all__ = ["FLIPS", "SPATIAL_KEYS", "AugmentConfig", "TF_OPS", "augment_batch", "center_crop", "make_augment"]

# the array namespace jaxseg.data.augment.affine needs, on TensorFlow ops
TF_OPS = types.SimpleNamespace(ones_like=tf.ones_like, where=tf.where, cos=tf.cos, sin=tf.sin, ceil=tf.math.ceil,
                               floor=tf.floor, minimum=tf.minimum, abs=tf.abs, stack=tf.stack,
                               mean=tf.reduce_mean, clip=tf.clip_by_value)


def _warp(x, transforms, out_h, out_w, nearest: bool):
    dtype = x.dtype
    y = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(x, tf.float32), transforms=transforms, output_shape=tf.constant([out_h, out_w]),
        fill_value=0.0, interpolation="NEAREST" if nearest else "BILINEAR", fill_mode="CONSTANT")
    return tf.cast(y, dtype)


def augment_batch(batch: dict, seed, cfg: AugmentConfig) -> dict:
    """Augments a dict batch of NHWC float tensors with the stateless ``seed`` (int64[2])."""
    image = batch["image"]
    height, width = int(image.shape[1]), int(image.shape[2])
    out_h, out_w = cfg.output_size(height, width)
    n = tf.shape(image)[0]
    u = tf.random.stateless_uniform([n, NUM_UNIFORMS], seed=tf.cast(seed, tf.int64), dtype=tf.float32)
    out = dict(batch)
    if cfg.geometric:
        transforms = affine_transforms(u, height, width, out_h, out_w, cfg, TF_OPS)
        for key in SPATIAL_KEYS:
            if key in out:
                out[key] = _warp(out[key], transforms, out_h, out_w, key in NEAREST_KEYS)
    if cfg.photometric:
        out["image"] = adjust_photometry(out["image"], u, cfg, TF_OPS)
    return out


def make_augment(cfg: AugmentConfig):
    """``fn(batch, seed) -> batch`` for ``ArraySource(augment=...)``, or None when augmentation is off
    or runs on the device."""
    if not cfg.augment or cfg.augment_on != "host":
        return None
    return lambda batch, seed: augment_batch(batch, seed, cfg)


def center_crop(arrays: dict, size: int) -> dict:
    """Centre ``size``² crops of the NHWC spatial entries (validation crops, thesis Tables 7-8)."""
    out = dict(arrays)
    for key in SPATIAL_KEYS:
        if key in out:
            h, w = out[key].shape[1:3]
            if size > min(h, w):
                raise ValueError(f"crop size {size} is larger than the {h}x{w} {key} arrays")
            y0, x0 = (h - size) // 2, (w - size) // 2
            out[key] = np.ascontiguousarray(out[key][:, y0:y0 + size, x0:x0 + size])
    return out
