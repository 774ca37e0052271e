"""Projective resampling of NHWC batches in JAX, with the semantics of TensorFlow's ImageProjectiveTransformV3.

Each example b has a transform ``(a0, a1, a2, b0, b1, b2, c0, c1)`` mapping the
output pixel (x, y) — integer pixel indices — to the input point

    x_in = (a0·x + a1·y + a2) / k,   y_in = (b0·x + b1·y + b2) / k,   k = c0·x + c1·y + 1.

Bilinear: ``Σ w·I[y_j, x_i]`` over the four neighbours ⌊·⌋, ⌊·⌋+1 with weights
(1 − |x_in − x_i|)(1 − |y_in − y_j|); nearest: ``I[round(y_in), round(x_in)]``
with halves rounded away from zero (C's ``std::round``). Every neighbour outside
the image reads ``fill`` (TF's ``fill_mode='CONSTANT'``); so does a pixel whose k is 0.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["projective_warp"]


def _round_half_away(v):
    return jnp.sign(v) * jnp.floor(jnp.abs(v) + 0.5)


def projective_warp(images, transforms, out_shape: tuple[int, int], nearest: bool = False, fill: float = 0.0):
    """Resamples ``images`` (B, H, W, C) by per-example ``transforms`` (B, 8) to (B, out_h, out_w, C) float32."""
    images = jnp.asarray(images, jnp.float32)
    n, height, width, channels = images.shape
    out_h, out_w = out_shape
    yy, xx = jnp.meshgrid(jnp.arange(out_h, dtype=jnp.float32), jnp.arange(out_w, dtype=jnp.float32),
                          indexing="ij")
    t = jnp.asarray(transforms, jnp.float32)[:, :, None, None]
    k = t[:, 6] * xx + t[:, 7] * yy + 1.0
    defined = k != 0
    k = jnp.where(defined, k, 1.0)
    x_in = (t[:, 0] * xx + t[:, 1] * yy + t[:, 2]) / k
    y_in = (t[:, 3] * xx + t[:, 4] * yy + t[:, 5]) / k
    flat = images.reshape(n, height * width, channels)

    def read(iy, ix):
        inside = defined & (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
        index = jnp.where(inside, iy.astype(jnp.int32) * width + ix.astype(jnp.int32), 0).reshape(n, -1, 1)
        values = jnp.take_along_axis(flat, index, axis=1).reshape(n, out_h, out_w, channels)
        return jnp.where(inside[..., None], values, fill)

    if nearest:
        return read(_round_half_away(y_in), _round_half_away(x_in))
    x0, y0 = jnp.floor(x_in), jnp.floor(y_in)
    x1, y1 = x0 + 1.0, y0 + 1.0
    wx0, wx1 = (x1 - x_in)[..., None], (x_in - x0)[..., None]
    wy0, wy1 = (y1 - y_in)[..., None], (y_in - y0)[..., None]
    top = wx0 * read(y0, x0) + wx1 * read(y0, x1)
    bottom = wx0 * read(y1, x0) + wx1 * read(y1, x1)
    return wy0 * top + wy1 * bottom
