"""Seeded training augmentation in tf.data: one geometric warp per example, then photometry.

Geometry (the same for ``image``, ``mask`` and any ``dist`` distance map) is one
affine map per example, output pixel ``p`` -> input point ``c + R(θ) F (p - c_out)``:

* ``F``  horizontal and/or vertical flip (``flips``: 'none' | 'horizontal' | 'vertical' | 'both');
* ``R``  rotation by θ uniform in ±``rotation_limit`` degrees (any angle);
* ``c``  the crop centre. Without ``crop_size`` the output is the whole image
  rotated about its centre (corners filled with 0). With ``crop_size`` the output
  is a ``crop_size``² window: a *random crop* — axis-aligned window inside the
  image, then rotated about its own centre — or, with ``random_pick``, the
  thesis's "random pick" (§6.1.2, Tables 7-8): a window rotated by θ whose four
  corners all lie inside the image (patch), so no pixel is padding.
  Centres are drawn so that θ = 0 samples whole pixels: unrotated crops and
  flips are exact copies.

Images and distance maps are resampled bilinearly, masks with nearest neighbour
(so they stay {0, 1}). Then brightness (``+ U(±brightness)``) and contrast
(``(x - mean) · U(1 ± contrast) + mean``) act on the image only, clipped to [0, 1].
Every random number comes from ``tf.random.stateless_uniform`` on the per-batch
seed ``ArraySource`` passes, so an augmented epoch is a function of (seed, epoch).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

FLIPS = ("none", "horizontal", "vertical", "both")
SPATIAL_KEYS = ("image", "mask", "dist")
NEAREST_KEYS = ("mask",)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The ``config.data`` augmentation keys, with their defaults (everything off)."""

    augment: bool = False
    flips: str = "none"
    rotation_limit: float = 0.0  # degrees
    crop_size: int | None = None
    random_pick: bool = False
    brightness: float = 0.0
    contrast: float = 0.0

    def __post_init__(self):
        if self.flips not in FLIPS:
            raise ValueError(f"config.data.flips must be one of {FLIPS}, got {self.flips!r}")
        if not 0 <= self.rotation_limit <= 180:
            raise ValueError(f"config.data.rotation_limit must be in [0, 180] degrees, got {self.rotation_limit}")
        if self.crop_size is not None and self.crop_size < 1:
            raise ValueError(f"config.data.crop_size must be positive, got {self.crop_size}")
        if self.random_pick and self.crop_size is None:
            raise ValueError("config.data.random_pick needs config.data.crop_size")
        if self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ValueError("config.data.brightness must be >= 0 and contrast in [0, 1)")

    @classmethod
    def from_config(cls, data, **overrides) -> "AugmentConfig":
        """Reads the keys present in ``config.data`` (a ConfigDict or dict); absent keys keep defaults."""
        kw = {f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)}
        kw.update(overrides)
        return cls(**kw)


def _affine(u, height, width, out_h, out_w, cfg: AugmentConfig):
    """Per-example [B, 8] projective transforms (output -> input) from uniforms ``u`` [B, 5]."""
    one = tf.ones_like(u[:, 0])
    fx = tf.where(u[:, 0] < 0.5, -one, one) if cfg.flips in ("horizontal", "both") else one
    fy = tf.where(u[:, 1] < 0.5, -one, one) if cfg.flips in ("vertical", "both") else one
    theta = (2.0 * u[:, 2] - 1.0) * (cfg.rotation_limit * math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    m00, m01, m10, m11 = cos * fx, -sin * fy, sin * fx, cos * fy
    cox, coy = (out_w - 1) / 2.0, (out_h - 1) / 2.0

    def offset(uniform, size, ext, out_centre):
        """Integer-when-possible shift t = c - c_out of the window centre, keeping ±ext inside [0, size-1]."""
        lo = tf.math.ceil(ext - out_centre)
        hi = tf.math.floor(size - 1 - ext - out_centre)
        t = lo + tf.floor(uniform * (hi - lo + 1.0))
        return tf.where(hi >= lo, tf.minimum(t, hi), (size - 1) / 2.0 - out_centre)

    if cfg.crop_size is None:
        tx = tf.fill(tf.shape(theta), (width - 1) / 2.0 - cox)
        ty = tf.fill(tf.shape(theta), (height - 1) / 2.0 - coy)
    else:
        if cfg.random_pick:  # the rotated window's half-extents
            ext_x = tf.abs(cos) * cox + tf.abs(sin) * coy
            ext_y = tf.abs(sin) * cox + tf.abs(cos) * coy
        else:
            ext_x, ext_y = cox * one, coy * one
        tx = offset(u[:, 3], float(width), ext_x, cox)
        ty = offset(u[:, 4], float(height), ext_y, coy)
    cx, cy = cox + tx, coy + ty
    zero = tf.zeros_like(theta)
    return tf.stack([m00, m01, cx - m00 * cox - m01 * coy,
                     m10, m11, cy - m10 * cox - m11 * coy, zero, zero], axis=1)


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
    out_h = out_w = cfg.crop_size if cfg.crop_size is not None else None
    if out_h is None:
        out_h, out_w = height, width
    if out_h > height or out_w > width:
        raise ValueError(f"crop_size {cfg.crop_size} is larger than the {height}x{width} images")
    n = tf.shape(image)[0]
    u = tf.random.stateless_uniform([n, 7], seed=tf.cast(seed, tf.int64), dtype=tf.float32)
    out = dict(batch)
    geometric = cfg.flips != "none" or cfg.rotation_limit > 0 or cfg.crop_size is not None
    if geometric:
        transforms = _affine(u, height, width, out_h, out_w, cfg)
        for key in SPATIAL_KEYS:
            if key in out:
                out[key] = _warp(out[key], transforms, out_h, out_w, key in NEAREST_KEYS)
    if cfg.brightness or cfg.contrast:
        img = out["image"]
        b = ((2.0 * u[:, 5] - 1.0) * cfg.brightness)[:, None, None, None]
        c = (1.0 + (2.0 * u[:, 6] - 1.0) * cfg.contrast)[:, None, None, None]
        mean = tf.reduce_mean(img, axis=[1, 2, 3], keepdims=True)
        out["image"] = tf.clip_by_value((img - mean) * c + mean + b, 0.0, 1.0)
    return out


def make_augment(cfg: AugmentConfig):
    """``fn(batch, seed) -> batch`` for ``ArraySource(augment=...)``, or None when augmentation is off."""
    if not cfg.augment:
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
