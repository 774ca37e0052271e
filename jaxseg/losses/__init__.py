"""Loss registry: ``build_loss(config.loss)`` returns the trainer's ``loss_fn(logits, batch, epoch)``.

Every registered loss takes NHWC arrays, ``fn(logits, labels, **params) -> scalar``
with ``logits`` and ``labels`` of the same shape (N, H, W, C) (``labels`` =
``batch['mask']``, one-hot / {0,1}; other shapes raise ``ValueError`` naming
both, jitted or not; the boundary loss also takes ``batch['dist']``
when the batch carries it, and otherwise computes the signed distance map on
device). ``loss_fn`` returns ``(loss, aux)``; the trainer logs every aux scalar
as ``train/<key>``.

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
from jaxseg.losses.lovasz import lovasz_hinge, lovasz_softmax
from jaxseg.losses.registry import LOSSES
from jaxseg.losses.regional import (bce, cross_entropy, dice, focal, focal_tversky, jaccard, probabilities,
                                    tversky, weighted_bce)
from jaxseg.ops.shapes import check_nhwc

__all__ = ["LOSSES", "available", "get_loss", "build_loss"]


@LOSSES.register("lovasz_hinge")
def lovasz_hinge_nhwc(logits, labels, per_image: bool = True, alpha: float = 1.0, beta: float = 1.0):
    """``lovasz_hinge`` on (N, H, W, 1) logits and masks of the same shape (Berman et al. 2018)."""
    check_nhwc("lovasz_hinge", logits=logits, labels=labels)
    if logits.shape[-1] != 1:
        raise ValueError(f"lovasz_hinge is binary (C=1); got logits {tuple(logits.shape)} — use lovasz_softmax")
    return lovasz_hinge(logits[..., 0], labels[..., 0], per_image=per_image, alpha=alpha, beta=beta)


@LOSSES.register("lovasz_softmax")
def lovasz_softmax_nhwc(logits, labels, classes="present", per_image: bool = False, from_logits: bool = True,
                        alpha: float = 1.0, beta: float = 1.0):
    """``lovasz_softmax`` on NHWC logits and one-hot masks; C=1 is (background, foreground).

    ``logits``, ``labels``: the same shape (N, H, W, C) (for an integer class map
    call ``jaxseg.losses.lovasz.lovasz_softmax`` on probabilities). With C=1,
    ``classes=[1]`` is the thesis's binary form f_J(|y − ŷ|) (§5.2.1).
    """
    check_nhwc("lovasz_softmax", logits=logits, labels=labels)
    probs = probabilities(logits, from_logits)
    if probs.shape[-1] == 1:
        probs = jnp.concatenate([1.0 - probs, probs], axis=-1)
        labels = jnp.concatenate([1.0 - labels, labels], axis=-1)
    return lovasz_softmax(probs, labels, classes=classes, per_image=per_image, alpha=alpha, beta=beta)




def available() -> list[str]:
    """Names of the registered losses."""
    return LOSSES.names()


def get_loss(name: str) -> Callable:
    """The registered ``fn(logits, labels, **params)``; ValueError listing the names if unknown."""
    return LOSSES.get(name)


def _as_dict(c) -> dict:
    return c.to_dict() if hasattr(c, "to_dict") else dict(c)


def _term(cfg: Mapping[str, Any]):
    """``(name, fn(logits, batch))`` for one ``{'name': ..., **params}``, parameters checked."""
    params = dict(cfg)
    name = params.pop("name", None)
    fn = get_loss(name)
    LOSSES.check(name, params)
    takes_dist = "dist" in inspect.signature(fn).parameters

    def term(logits, batch):
        extra = {"dist": batch["dist"]} if takes_dist and "dist" in batch else {}
        return fn(logits, batch["mask"], **params, **extra)

    return name, term


def build_loss(loss_config: Mapping[str, Any]):
    """``loss_fn(logits, batch, epoch) -> (loss, aux)`` from ``config.loss`` (schema in the module doc)."""
    cfg = _as_dict(loss_config)
    if cfg.get("terms") is None:
        _, term = _term(cfg)
        return lambda logits, batch, epoch: (term(logits, batch), {})

    extra = sorted(set(cfg) - {"terms", "combine", "schedule", "name"})
    if cfg.get("name") is not None or extra:
        raise ValueError(f"a combined loss takes 'terms', 'combine' and 'schedule' only; got also "
                         f"{['name'] if cfg.get('name') is not None else []}{extra}")
    terms_cfg = [_as_dict(t) for t in cfg["terms"]]
    if not terms_cfg:
        raise ValueError("loss 'terms' is empty")
    mode = cfg.get("combine") or "sum"
    if mode not in _combine.COMBINE_MODES:
        raise ValueError(f"unknown combine {mode!r}; available: {', '.join(_combine.COMBINE_MODES)}")
    schedule = cfg.get("schedule")
    if schedule is None and mode == "convex":
        raise ValueError("combine='convex' needs a schedule, e.g. {'kind': 'constant', 'alpha': 0.5}")
    alpha_fn = None if schedule is None else _combine.schedule_fn(_as_dict(schedule), mode)
    weights = [float(t.pop("weight", 1.0)) for t in terms_cfg]
    named = [_term(t) for t in terms_cfg]
    keys = [n if [m for m, _ in named].count(n) == 1 else f"{n}{i}" for i, (n, _) in enumerate(named)]

    def loss_fn(logits, batch, epoch):
        values = [term(logits, batch) for _, term in named]
        alpha = jnp.ones((), jnp.float32) if alpha_fn is None else alpha_fn(epoch)
        total, effective = _combine.combine(values, weights, alpha, mode)
        aux = {f"loss_{k}": v for k, v in zip(keys, values)}
        aux.update({f"weight_{k}": jnp.asarray(w, jnp.float32) for k, w in zip(keys, effective)})
        if alpha_fn is not None:
            aux["alpha"] = alpha
        return total, aux

    return loss_fn
