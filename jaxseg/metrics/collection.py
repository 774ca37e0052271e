"""Streaming metric collection used by the trainer's evaluation loop.

Each metric keeps sufficient statistics on device: ``init() -> state``,
``update(state, probs, labels, valid) -> state`` (jit-able, one batch),
``compute(state) -> float`` (once, at the end of evaluation, on host).
Nothing syncs to host per batch.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.metrics.confusion import confusion_counts, dice_score, jaccard_score


class Metric(NamedTuple):
    init: Callable[[], Any]
    update: Callable[[Any, Any, Any, Any], Any]
    compute: Callable[[Any], float]


def _global_confusion_metric(score_fn: Callable, threshold: float) -> Metric:
    """Counts summed over every pixel of the evaluation set (thesis §5.1), then scored."""

    def init():
        return jnp.zeros((3,), jnp.float32)

    def update(state, probs, labels, valid):
        tp, fp, fn, _ = confusion_counts(probs, labels, threshold, valid)
        return state + jnp.stack([tp.sum(), fp.sum(), fn.sum()])

    def compute(state):
        tp, fp, fn = (jnp.asarray(v) for v in np.asarray(state))
        return float(score_fn(tp, fp, fn))

    return Metric(init, update, compute)


_FACTORIES: dict[str, Callable[..., Metric]] = {
    "dice": lambda threshold: _global_confusion_metric(dice_score, threshold),
    "jaccard": lambda threshold: _global_confusion_metric(jaccard_score, threshold),
}


def available() -> list[str]:
    return sorted(_FACTORIES)


class MetricCollection:
    """A named set of streaming metrics evaluated together."""

    def __init__(self, names: Sequence[str], threshold: float = 0.5):
        unknown = [n for n in names if n not in _FACTORIES]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; available: {', '.join(available())}")
        self.names = tuple(names)
        self.metrics = {n: _FACTORIES[n](threshold=threshold) for n in names}

    def init(self):
        return {n: m.init() for n, m in self.metrics.items()}

    def update(self, state, probs, labels, valid):
        return {n: m.update(state[n], probs, labels, valid) for n, m in self.metrics.items()}

    def compute(self, state) -> dict[str, float]:
        state = jax.device_get(state)
        return {n: m.compute(state[n]) for n, m in self.metrics.items()}
