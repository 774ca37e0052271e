"""Loss registry: ``build_loss(config.loss)`` returns the trainer's loss function.

A loss function takes arrays, ``fn(logits, labels, **params) -> scalar``.
The trainer's loss is ``loss_fn(logits, batch, epoch) -> (loss, aux)``, where
``aux`` is a dict of scalars logged next to the loss.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from jaxseg.losses.regional import bce, dice

_REGISTRY: dict[str, Callable] = {
    "bce": bce,
    "dice": dice,
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_loss(name: str) -> Callable:
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def _check_params(name: str, fn: Callable, params: Mapping[str, Any]) -> None:
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("logits", "labels")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"loss {name!r} has no parameter(s) {unknown}; parameters: {accepted}")


def build_loss(loss_config: Mapping[str, Any]):
    """``loss_fn(logits, batch, epoch) -> (loss, aux)`` from ``{'name': ..., **params}``."""
    cfg = dict(loss_config)
    name = cfg.pop("name", None)
    fn = get_loss(name)
    _check_params(name, fn, cfg)

    def loss_fn(logits, batch, epoch):
        del epoch
        return fn(logits, batch["mask"], **cfg), {}

    return loss_fn
