"""The one prediction rule of every metric: segmentation modes, predicted masks, ignored pixels.

Modes (segmentation_models_pytorch's names):

  'binary'      C = 1, a sigmoid:  predicted where probability > threshold
  'multiclass'  C ≥ 2 softmax channels, exactly one class per pixel (background = class 0,
                masks one-hot):  predicted class = argmax over channels (ties: the lowest index)
  'multilabel'  C ≥ 1 independent sigmoids, classes may overlap (masks multi-hot):
                predicted where probability > threshold, per class

``default_mode(C)`` is 'binary' for C = 1 and 'multiclass' otherwise: what
``MetricCollection``, ``build_metric``, ``confusion_counts`` and the ranking
functions use when no mode is given. :func:`predict_masks` is the only place a
prediction is made from probabilities — confusion counts, distance metrics and the
trainer's evaluation all call it, so a validation Dice is the Dice of the masks
``jaxseg.predict`` writes.

Ignored pixels: ``pixel_weight`` (N, H, W, 1), 0 for a pixel to ignore (e.g. the
ignore label), 1 otherwise. A pixel with weight 0 counts in no metric: not in
confusion counts, not in ranking histograms, and in distance metrics it is neither
prediction nor ground truth (its channels are all off). Any weight > 0 counts the
pixel once (metrics count pixels; they do not weight them).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxseg.ops.modes import MODES, check_mode, default_mode  # noqa: F401  (re-exported)
from jaxseg.ops.shapes import check_batch, check_nhwc, check_shape, shape_of

def predict_masks(probs, mode: str | None, threshold: float = 0.5):
    """The predicted masks of probabilities ``probs`` (N, H, W, C): bool (N, H, W, C).

    'multiclass': the one-hot of the argmax over channels (``threshold`` unused);
    'binary' / 'multilabel': ``probs > threshold`` per channel. ``mode=None``:
    :func:`default_mode` of C. Jit-able; a mode inconsistent with C raises ``ValueError``.
    """
    check_nhwc("predict_masks", probs=probs)
    probs = jnp.asarray(probs)
    c = probs.shape[-1]
    if check_mode(mode, c) == "multiclass":
        return jnp.argmax(probs, axis=-1)[..., None] == jnp.arange(c)
    return probs > threshold


def pixel_mask(fn: str, probs, valid=None, pixel_weight=None):
    """The pixels that count, bool (N, H, W, 1), or None when every pixel counts.

    ``valid`` (N,) drops padded images, ``pixel_weight`` (N, H, W, 1) drops pixels of
    weight 0; other shapes raise ``ValueError`` naming ``fn``.
    """
    check_batch(fn, valid, probs=probs)
    n, h, w, _ = shape_of(probs)
    out = None
    if valid is not None:
        out = jnp.asarray(valid, bool)[:, None, None, None]
    if pixel_weight is not None:
        check_shape(fn, "pixel_weight", pixel_weight, (n, h, w, 1), "(N, H, W, 1)", probs=probs)
        kept = jnp.asarray(pixel_weight) > 0
        out = kept if out is None else out & kept
    return out


def image_weights(fn: str, probs, valid=None, pixel_weight=None):
    """float32 (N,): 1 for an image that counts in a per-image mean — not padding, and with at
    least one pixel of weight > 0 (an image whose pixels are all ignored counts nowhere)."""
    n = shape_of(probs)[0]
    mask = pixel_mask(fn, probs, valid, pixel_weight)
    if mask is None:
        return jnp.ones((n,), jnp.float32)
    return jnp.any(jnp.broadcast_to(mask, (n,) + mask.shape[1:]), axis=(1, 2, 3)).astype(jnp.float32)
