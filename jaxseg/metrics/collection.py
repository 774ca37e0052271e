"""Streaming metric collection used by the trainer's evaluation loop.

Each metric keeps sufficient statistics on device: ``init() -> state``,
``update(state, probs, labels, valid) -> state`` (jit-able, one batch; probs
and labels (N, H, W, C), valid (N,) bool marks real vs padded images),
``compute(state) -> float | list[float]`` (once, at the end, on host). Nothing
syncs to host per batch; the states of a batch split in two add up to the
state of the whole batch, so streaming equals one-shot evaluation.

Metrics (names users know; parameters per metric through a spec string, see
:mod:`jaxseg.metrics.spec`):

  confusion, at threshold δ over every pixel of the set (thesis §5.1):
    dice, jaccard, precision, recall, specificity, balanced_accuracy
    params: threshold, average='macro'|'micro'|'none', per_image=False
            (True: mean over images of per-image scores), include_background
  ranking, over every pixel of the set (scikit-learn's definitions):
    roc_auc, average_precision
    params: average, include_background, mantissa_bits=16, octaves=24
  distance, per image then averaged over images:
    hausdorff (percentile=100), hausdorff95, average_hausdorff,
    balanced_average_hausdorff, modified_average_hausdorff = mahd (percentile=95)
    params: threshold, on='region'|'boundary', normalize=False,
            spacing=1.0 (or (row, col)), average='macro'|'none', include_background

``include_background=False`` drops channel 0 of multi-class (C > 1) masks.
``average='none'`` gives one value per class: keys ``<key>/<class index>``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.metrics import ranking, surface
from jaxseg.metrics.confusion import SCORES, average_scores, confusion_counts
from jaxseg.metrics.spec import MetricSpec, parse_spec
from jaxseg.ops.shapes import check_batch, check_nhwc
from jaxseg.registry import Registry


class Metric(NamedTuple):
    init: Callable[[], Any]
    update: Callable[[Any, Any, Any, Any], Any]
    compute: Callable[[Any], float | list[float]]
    higher_is_better: bool = True
    first_class: int = 0  # channel index of the first per-class value
    # metrics with equal non-None ``statistics`` keep the same state (e.g. dice and jaccard
    # share one set of counts, roc_auc and average_precision one histogram): the collection
    # accumulates it once.
    statistics: Any = None


def _check_average(average: str, allowed: Sequence[str]):
    if average not in allowed:
        raise ValueError(f"average must be one of {list(allowed)}; got {average!r}")


def _select(x, num_classes: int, include_background: bool):
    """Channels scored: all, or all but channel 0 of a multi-class mask."""
    if x.shape[-1] != num_classes:
        raise ValueError(f"expected {num_classes} channel(s), got shape {x.shape}; "
                         "pass num_classes to MetricCollection")
    return x[..., 1:] if (not include_background and num_classes > 1) else x


def _channels(num_classes: int, include_background: bool) -> tuple[int, int]:
    """(number of channels scored, index of the first)."""
    drop = not include_background and num_classes > 1
    return num_classes - drop, int(drop)


def _as_output(value):
    value = np.asarray(value, np.float64)
    return float(value) if value.ndim == 0 else [float(v) for v in value]


def _per_image_metric(values_fn: Callable, width: int, per_class: bool, higher_is_better: bool,
                      first_class: int) -> Metric:
    """Mean over valid images of ``values_fn(probs, labels)``: (N,) or, per class, (N, width)."""

    def init():
        return {"sum": jnp.zeros((width if per_class else 1,), jnp.float32),
                "count": jnp.zeros((), jnp.float32)}

    def update(state, probs, labels, valid):
        v = values_fn(probs, labels).reshape(probs.shape[0], -1)
        w = jnp.asarray(valid, jnp.float32)
        return {"sum": state["sum"] + jnp.sum(v * w[:, None], axis=0),
                "count": state["count"] + jnp.sum(w)}

    def compute(state):
        mean = np.asarray(state["sum"], np.float64) / max(float(state["count"]), 1.0)
        return _as_output(mean if per_class else mean[0])

    return Metric(init, update, compute, higher_is_better, first_class)


def confusion_metric(score: str, num_classes: int, threshold: float, average: str = "macro",
                     per_image: bool = False, include_background: bool = True) -> Metric:
    """A confusion-family score (``jaxseg.metrics.confusion.SCORES``) over the evaluation set.

    Default: counts TP/FP/FN/TN summed over every pixel of every image (thesis
    §5.1), scored once. ``per_image=True``: the mean over images of per-image scores.
    """
    _check_average(average, ("macro", "micro", "none"))
    score_fn = SCORES[score]
    c, first = _channels(num_classes, include_background)

    def counts(probs, labels, valid):
        p, y = (_select(a, num_classes, include_background) for a in (probs, labels))
        return jnp.stack(confusion_counts(p, y, threshold, valid), axis=-1)  # (N, C, 4)

    if per_image:
        return _per_image_metric(lambda p, y: average_scores(score_fn, counts(p, y, None), average),
                                 c, average == "none", True, first)

    def init():
        return jnp.zeros((c, 4), jnp.int32)

    def update(state, probs, labels, valid):
        return state + jnp.sum(counts(probs, labels, valid), axis=0)

    def compute(state):
        return _as_output(average_scores(score_fn, jnp.asarray(np.asarray(state)), average))

    return Metric(init, update, compute, True, first,
                  ("confusion", num_classes, threshold, include_background))


def ranking_metric(kind: str, num_classes: int, threshold: float = 0.5, average: str = "macro",
                   include_background: bool = True,
                   mantissa_bits: int = ranking.DEFAULT_MANTISSA_BITS,
                   octaves: int = ranking.DEFAULT_OCTAVES) -> Metric:
    """ROC AUC or AP over every pixel of the set from a streamed score histogram (``ranking``).

    ``threshold`` is accepted and ignored (ranking metrics use every threshold).
    """
    _check_average(average, ("macro", "micro", "none"))
    q = ranking.Quantizer(mantissa_bits, octaves).validate()
    from_hist = {"roc_auc": ranking.roc_auc_from_histogram,
                 "average_precision": ranking.average_precision_from_histogram}[kind]
    c, first = _channels(num_classes, include_background)

    def init():
        return jnp.zeros((c, q.num_bins, 2), jnp.int32)

    def update(state, probs, labels, valid):
        p, y = (_select(a, num_classes, include_background) for a in (probs, labels))
        return ranking.accumulate_histogram(state, p, y, valid, q)

    def compute(state):
        return ranking.reduce_classes(from_hist, state, average)

    return Metric(init, update, compute, True, first,
                  ("score_histogram", num_classes, include_background, q))


_DISTANCES: dict[str, Callable] = {
    "hausdorff": surface.hausdorff,
    "hausdorff95": surface.hausdorff95,
    "average_hausdorff": surface.average_hausdorff,
    "balanced_average_hausdorff": surface.balanced_average_hausdorff,
    "modified_average_hausdorff": surface.modified_average_hausdorff,
    "mahd": surface.modified_average_hausdorff,
}
# name -> factory(num_classes=, threshold=, **params) -> Metric
METRICS = Registry("metric", inputs=("num_classes", "threshold"))


def distance_metric(name: str, num_classes: int, threshold: float, average: str = "macro",
                    include_background: bool = True, **params) -> Metric:
    """A Hausdorff-family distance (``jaxseg.metrics.surface``) per image and class,
    averaged over images (and over classes for ``average='macro'``).

    ``params`` go to the distance function: on, normalize, spacing, percentile.
    """
    _check_average(average, ("macro", "none"))
    fn = _DISTANCES[name]
    allowed = set(inspect.signature(fn).parameters) - {"pred", "labels"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {sorted(unknown)}; "
                         f"allowed: {sorted(allowed | {'threshold', 'average', 'include_background'})}")
    fn = functools.partial(fn, **params)
    c, first = _channels(num_classes, include_background)

    def values(probs, labels):
        p, y = (_select(a, num_classes, include_background) for a in (probs, labels))
        d = fn(p > threshold, y > 0.5)  # (N, C)
        return d if average == "none" else jnp.mean(d, axis=-1)

    return _per_image_metric(values, c, average == "none", False, first)


for _name in SCORES:
    METRICS.register(_name, functools.partial(confusion_metric, _name))
for _name in ("roc_auc", "average_precision"):
    METRICS.register(_name, functools.partial(ranking_metric, _name))
for _name in _DISTANCES:
    METRICS.register(_name, functools.partial(distance_metric, _name))


def available() -> list[str]:
    """Names accepted in ``config.eval.metrics`` (each takes parameters, see the module doc)."""
    return METRICS.names()


def build_metric(spec: str | Mapping[str, Any], threshold: float = 0.5,
                 num_classes: int = 1) -> tuple[str, Metric]:
    """(key, Metric) for one spec; ValueError for an unknown name or parameter."""
    s: MetricSpec = parse_spec(spec)
    METRICS.get(s.name)  # ValueError listing the available names
    params = dict(s.params)
    if params.get("on", "region") not in ("region", "boundary"):  # else found only at the first evaluation
        raise ValueError(f"metric spec {spec!r}: on must be 'region' or 'boundary'; got {params['on']!r}")
    threshold = float(params.pop("threshold", threshold))
    try:
        return s.key, METRICS.build(s.name, num_classes=num_classes, threshold=threshold, **params)
    except TypeError as e:
        raise ValueError(f"metric spec {spec!r}: {e}") from None


def higher_is_better(spec: str | Mapping[str, Any]) -> bool:
    """Whether larger values of this metric are better (False for distances)."""
    return parse_spec(spec).name not in _DISTANCES


class MetricCollection:
    """A named set of streaming metrics evaluated together.

    ``MetricCollection(config.eval.metrics, config.eval.threshold, num_classes)``;
    ``state = init()``, ``state = update(state, probs, labels, valid)`` inside
    the jit-ed eval step (probs, labels (N, H, W, C), valid (N,); other shapes
    raise ``ValueError``), ``compute(state) -> {key: float}`` once on host
    (per-class values as ``key/<class>``).
    """

    def __init__(self, names: Sequence[str | Mapping[str, Any]], threshold: float = 0.5,
                 num_classes: int = 1):
        built = [build_metric(n, threshold, num_classes) for n in names]
        keys = [k for k, _ in built]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"metric key(s) {duplicates} given twice")
        self.names = tuple(keys)
        self.metrics = dict(built)
        # one state per distinct sufficient statistic: metric key -> state key
        owner: dict[Any, str] = {}
        self._state_of = {k: (owner.setdefault(m.statistics, k) if m.statistics is not None else k)
                          for k, m in built}

    def init(self):
        return {n: self.metrics[n].init() for n in sorted(set(self._state_of.values()))}

    def update(self, state, probs, labels, valid):
        check_nhwc("MetricCollection.update", probs=probs, labels=labels)
        check_batch("MetricCollection.update", valid, probs=probs)
        return {n: self.metrics[n].update(state[n], probs, labels, valid) for n in state}

    def compute(self, state) -> dict[str, float]:
        state = jax.device_get(state)
        out: dict[str, float] = {}
        for n, m in self.metrics.items():
            value = m.compute(state[self._state_of[n]])
            if isinstance(value, list):
                out.update({f"{n}/{m.first_class + i}": v for i, v in enumerate(value)})
            else:
                out[n] = value
        return out
