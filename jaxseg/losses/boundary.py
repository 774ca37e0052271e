"""Boundary loss (Kervadec et al. 2019, "Boundary loss for highly unbalanced segmentation"; thesis §5.2.2).

Signed distance map of a ground-truth mask G, per class, Kervadec's convention
(their ``one_hot2dist``; negative inside the object):

    D = edt(outside)·outside − (edt(inside) − 1)·inside,

where edt(inside) is the distance of an object pixel to the nearest background
pixel and edt(outside) the distance of a background pixel to the nearest object
pixel. A class absent from the image gets D = 0 (as in Kervadec's code). It is
computed on device by the exact separable EDT (``jaxseg.ops.edt``), so maps are
exact for any augmentation applied before the loss.

    BoundaryLoss = mean_{pixels, images, classes} ŝ · D̃,    D̃ = clip(D, −b, b) / r

with ŝ the sigmoid/softmax probabilities, b the "distance map bounds" and r the
"rescale factor" of thesis Table 7 (both optional).

Shapes (NHWC): ``logits``, ``labels``, ``dist`` and ``probs`` are all (N, H, W, C);
anything else raises ``ValueError`` naming the shapes, jitted or not.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxseg.losses.regional import activation, check_pixel_weight, probabilities, safe_divide
from jaxseg.losses.registry import LOSSES
from jaxseg.ops.edt import euclidean_distance_transform
from jaxseg.ops.shapes import check_nhwc

__all__ = ["signed_distance_map", "boundary_loss", "boundary"]


def signed_distance_map(mask, spacing=(1.0, 1.0)):
    """Kervadec's signed distance map D = edt(out)·out − (edt(in) − 1)·in, per channel.

    ``mask``: (N, H, W, C) {0,1}; returns float32 (N, H, W, C), 0 for the
    channels of an image with no foreground pixel. The "− 1" is Kervadec's literal
    formula (in pixels; with ``spacing`` ≠ 1 it stays 1, as in their code).
    Equal to ``one_hot2dist`` built on ``scipy.ndimage.distance_transform_edt``.
    """
    check_nhwc("signed_distance_map", mask=mask)
    m = jnp.moveaxis(jnp.asarray(mask) > 0.5, -1, -3)  # (..., C, H, W)
    inside = m.astype(jnp.float32)
    outside = 1.0 - inside
    dist_out = euclidean_distance_transform(~m, spacing)  # background pixel -> nearest object pixel
    dist_in = euclidean_distance_transform(m, spacing)    # object pixel -> nearest background pixel
    d = dist_out * outside - (dist_in - 1.0) * inside
    d = jnp.where(jnp.any(m, axis=(-2, -1), keepdims=True), d, 0.0)
    return jnp.moveaxis(d, -3, -1)


def boundary_loss(probs, dist, clamp: float | None = None, rescale: float = 1.0, pixel_weight=None):
    """mean(ŝ · clip(D, −clamp, clamp) / rescale) (Kervadec et al. 2019, eq. (5); thesis §5.2.2).

    ``probs``, ``dist``: the same shape (N, H, W, C). ``pixel_weight`` m (N, H, W, 1)
    or None: Σ m·ŝ·D̃ / (C·Σ m), the mean over the non-ignored pixels (0 if none).
    """
    check_nhwc("boundary_loss", probs=probs, dist=dist)
    check_pixel_weight("boundary_loss", pixel_weight, probs)
    d = dist.astype(jnp.float32)
    if clamp is not None:
        d = jnp.clip(d, -clamp, clamp)
    if pixel_weight is None:
        return jnp.mean(probs.astype(jnp.float32) * d) / rescale
    m = pixel_weight.astype(jnp.float32)
    return safe_divide(jnp.sum(m * probs.astype(jnp.float32) * d), jnp.sum(m) * d.shape[-1]) / rescale


@LOSSES.register("boundary")
def boundary(logits, labels, dist=None, clamp: float | None = None, rescale: float = 1.0,
             from_logits: bool = True, include_background: bool | None = None, mode: str | None = None,
             pixel_weight=None):
    """Boundary loss of NHWC logits: ``boundary_loss(probs, D)`` with D from ``labels`` unless given.

    Probabilities per ``mode`` (``jaxseg.losses.regional``): C=1 the sigmoid
    foreground; softmax classes (C>1, 'multiclass'); independent sigmoids
    ('multilabel'). ``include_background``: None (default) leaves channel 0 out of
    softmax classes (Kervadec use the foreground classes) and keeps every
    multilabel channel; True keeps it, False drops channel 0 whenever C>1.
    ``logits``, ``labels`` and ``dist`` (when given): the same shape (N, H, W, C).
    ``pixel_weight`` (N, H, W, 1), 0 = ignored: the mean is over the other pixels,
    and D computed here treats ignored pixels as background (m·y), so their
    labels change nothing; a ``dist`` given is used as it is.
    """
    check_nhwc("boundary", logits=logits, labels=labels, dist=dist)
    check_pixel_weight("boundary", pixel_weight, logits)
    act = activation("boundary", mode, logits.shape[-1])
    probs = probabilities(logits, from_logits, mode)
    if dist is None:
        dist = signed_distance_map(labels if pixel_weight is None else labels * pixel_weight)
    if include_background is None:
        include_background = act == "sigmoid"
    if probs.shape[-1] > 1 and not include_background:
        probs, dist = probs[..., 1:], dist[..., 1:]
    return boundary_loss(probs, dist, clamp, rescale, pixel_weight)
