"""Loss registry: ``build_loss(config.loss)`` returns the trainer's ``loss_fn(logits, batch, epoch)``.

Every registered loss takes NHWC arrays, ``fn(logits, labels, **params) -> scalar``
with ``logits`` and ``labels`` of the same shape (N, H, W, C) (``labels`` =
``batch['mask']``, one-hot / {0,1}; other shapes raise ``ValueError`` naming
both, jitted or not). Parameters named in ``BATCH_INPUTS`` are filled from the
batch key of the same name when the batch carries it: ``dist`` (the boundary
loss; otherwise it computes the signed distance map on device) and
``pixel_weight`` (N, H, W, 1) in {0, 1}, 0 = ignored pixel (every loss; none:
every pixel counts). ``mode`` (None, 'binary', 'multiclass', 'multilabel') is an
ordinary parameter of every loss (``jaxseg.losses.regional``). ``loss_fn``
returns ``(loss, aux)``; the trainer logs every aux scalar as ``train/<key>``.

``config.loss`` schema (a mapping or ml_collections ConfigDict):

* one loss: ``{'name': 'tversky', 'alpha': 0.7, 'beta': 0.3}`` — the loss's
  keyword parameters beside its name.
* a combination: ``{'terms': [{'name': ..., 'weight': w, **params}, ...],
  'combine': 'sum' | 'convex', 'schedule': {'kind': ..., **params}}`` — see
  ``jaxseg.losses.combine``: the last term is the scheduled one, ``weight``
  (default 1) a static factor, no ``schedule`` means L = Σ wᵢ·Lᵢ. aux holds
  ``alpha`` (when scheduled), ``loss_<term>`` and ``weight_<term>`` (the weight
  in force).

Thesis Table 7, combined (linear), in full::

    {'terms': [{'name': 'tversky', 'alpha': 0.7, 'beta': 0.3},
               {'name': 'boundary', 'clamp': 128.0, 'rescale': 128.0}],
     'combine': 'convex',
     'schedule': {'kind': 'rebalance', 'alpha': 0.5, 'every': 20, 'step': 0.2, 'floor': 0.1}}

An unknown loss, parameter, combine mode or schedule raises ``ValueError``
naming the available ones.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import jax.numpy as jnp

from jaxseg.losses import boundary as _boundary  # the module: keep jaxseg.losses.boundary a module
from jaxseg.losses import combine as _combine
from jaxseg.losses.lovasz import lovasz_classes, lovasz_hinge, lovasz_softmax
from jaxseg.losses.registry import LOSSES
from jaxseg.losses.regional import (activation, bce, check_pixel_weight, cross_entropy, dice, focal, focal_tversky,
                                    jaccard, probabilities, tversky, weighted_bce)
from jaxseg.ops.shapes import check_nhwc

__all__ = ["LOSSES", "BATCH_INPUTS", "available", "get_loss", "build_loss"]


@LOSSES.register("lovasz_hinge")
def lovasz_hinge_nhwc(logits, labels, per_image: bool = True, alpha: float = 1.0, beta: float = 1.0,
                      mode: str | None = None, pixel_weight=None):
    """``lovasz_hinge`` on (N, H, W, 1) logits and masks of the same shape (Berman et al. 2018).

    ``mode='multilabel'``: (N, H, W, C), one binary hinge per channel, the mean over
    channels (and images if ``per_image``). ``pixel_weight`` (N, H, W, 1), 0 =
    ignored: no error, not counted in FN/FP (an image with every pixel ignored
    counts as loss 0 in the mean over images).
    """
    check_nhwc("lovasz_hinge", logits=logits, labels=labels)
    check_pixel_weight("lovasz_hinge", pixel_weight, logits)
    c = logits.shape[-1]
    if mode == "multiclass" or (c != 1 and mode != "multilabel"):
        raise ValueError(f"lovasz_hinge is binary (C=1) or per channel with mode='multilabel'; got logits "
                         f"{tuple(logits.shape)} — use lovasz_softmax")
    activation("lovasz_hinge", mode, c)
    w = None if pixel_weight is None else jnp.broadcast_to(pixel_weight, labels.shape)
    if c == 1:
        return lovasz_hinge(logits[..., 0], labels[..., 0], per_image=per_image, alpha=alpha, beta=beta,
                            weights=None if w is None else w[..., 0])
    n, h, wd, _ = logits.shape
    rows = (c * n, h, wd) if per_image else (c, n * h, wd)  # one row per class (and image): equal sizes
    by_class = lambda a: jnp.moveaxis(a, -1, 0).reshape(rows)  # noqa: E731
    return lovasz_hinge(by_class(logits), by_class(labels), per_image=True, alpha=alpha, beta=beta,
                        weights=None if w is None else by_class(w))


@LOSSES.register("lovasz_softmax")
def lovasz_softmax_nhwc(logits, labels, classes="present", per_image: bool = False, from_logits: bool = True,
                        alpha: float = 1.0, beta: float = 1.0, mode: str | None = None, pixel_weight=None):
    """``lovasz_softmax`` on NHWC logits and one-hot masks; C=1 is (background, foreground).

    ``logits``, ``labels``: the same shape (N, H, W, C) (for an integer class map
    call ``jaxseg.losses.lovasz.lovasz_softmax`` on probabilities). With C=1,
    ``classes=[1]`` is the thesis's binary form f_J(|y − ŷ|) (§5.2.1). Softmax
    pixels whose one-hot label is all zero are ignored. ``mode='multilabel'``:
    per-channel sigmoids, class c scored by f_J(|y_c − σ(z_c)|) over every pixel
    (no background class is added). ``pixel_weight`` (N, H, W, 1), 0 = ignored:
    those pixels have no error and do not count (nor for 'present').
    """
    check_nhwc("lovasz_softmax", logits=logits, labels=labels)
    check_pixel_weight("lovasz_softmax", pixel_weight, logits)
    activation("lovasz_softmax", mode, logits.shape[-1])
    probs = probabilities(logits, from_logits, mode)
    w = None if pixel_weight is None else pixel_weight[..., 0].astype(jnp.float32)
    if mode == "multilabel":
        valid = jnp.ones(probs.shape[:-1], jnp.float32) if w is None else w
        return lovasz_classes(probs, labels.astype(jnp.float32), valid, classes, per_image, alpha, beta)
    if probs.shape[-1] == 1:
        probs = jnp.concatenate([1.0 - probs, probs], axis=-1)
        labels = jnp.concatenate([1.0 - labels, labels], axis=-1)
    return lovasz_softmax(probs, labels, classes=classes, per_image=per_image, alpha=alpha, beta=beta, weights=w)


def available() -> list[str]:
    """Names of the registered losses."""
    return LOSSES.names()


def get_loss(name: str) -> Callable:
    """The registered ``fn(logits, labels, **params)``; ValueError listing the names if unknown."""
    return LOSSES.get(name)


def _as_dict(c) -> dict:
    return c.to_dict() if hasattr(c, "to_dict") else dict(c)


BATCH_INPUTS = ("dist", "pixel_weight")
"""Loss parameters filled from the batch key of the same name when the loss takes it and the batch has it."""


def _term(cfg: Mapping[str, Any], mode: str | None = None):
    """``(name, fn(logits, batch))`` for one ``{'name': ..., **params}``, parameters checked; the model's
    ``mode`` goes to every loss that takes one unless the term sets its own."""
    params = dict(cfg)
    name = params.pop("name", None)
    fn = get_loss(name)
    LOSSES.check(name, params)
    if mode is not None and "mode" in LOSSES.parameters(name):
        params.setdefault("mode", mode)
    takes = [k for k in BATCH_INPUTS if k in inspect.signature(fn).parameters]

    def term(logits, batch):
        extra = {k: batch[k] for k in takes if k in batch}
        return fn(logits, batch["mask"], **params, **extra)

    return name, term


def build_loss(loss_config: Mapping[str, Any], mode: str | None = None):
    """``loss_fn(logits, batch, epoch) -> (loss, aux)`` from ``config.loss`` (schema in the module doc);
    ``mode`` is ``config.model.mode`` (None: the sigmoid-for-one-channel, softmax-otherwise rule)."""
    cfg = _as_dict(loss_config)
    if cfg.get("terms") is None:
        _, term = _term(cfg, mode)
        return lambda logits, batch, epoch: (term(logits, batch), {})

    extra = sorted(set(cfg) - {"terms", "combine", "schedule", "name"})
    if cfg.get("name") is not None or extra:
        raise ValueError(f"a combined loss takes 'terms', 'combine' and 'schedule' only; got also "
                         f"{['name'] if cfg.get('name') is not None else []}{extra}")
    terms_cfg = [_as_dict(t) for t in cfg["terms"]]
    if not terms_cfg:
        raise ValueError("loss 'terms' is empty")
    combine = cfg.get("combine") or "sum"
    if combine not in _combine.COMBINE_MODES:
        raise ValueError(f"unknown combine {combine!r}; available: {', '.join(_combine.COMBINE_MODES)}")
    schedule = cfg.get("schedule")
    if schedule is None and combine == "convex":
        raise ValueError("combine='convex' needs a schedule, e.g. {'kind': 'constant', 'alpha': 0.5}")
    alpha_fn = None if schedule is None else _combine.schedule_fn(_as_dict(schedule), combine)
    weights = [float(t.pop("weight", 1.0)) for t in terms_cfg]
    named = [_term(t, mode) for t in terms_cfg]
    keys = [n if [m for m, _ in named].count(n) == 1 else f"{n}{i}" for i, (n, _) in enumerate(named)]

    def loss_fn(logits, batch, epoch):
        values = [term(logits, batch) for _, term in named]
        alpha = jnp.ones((), jnp.float32) if alpha_fn is None else alpha_fn(epoch)
        total, effective = _combine.combine(values, weights, alpha, combine)
        aux = {f"loss_{k}": v for k, v in zip(keys, values)}
        aux.update({f"weight_{k}": jnp.asarray(w, jnp.float32) for k, w in zip(keys, effective)})
        if alpha_fn is not None:
            aux["alpha"] = alpha
        return total, aux

    return loss_fn
