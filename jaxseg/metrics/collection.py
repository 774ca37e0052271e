"""Streaming metric collection used by the trainer's evaluation loop.

Each metric keeps sufficient statistics on device: ``init() -> state``,
``update(state, probs, labels, valid, pixel_weight) -> state`` (jit-able, one
batch; probs and labels (N, H, W, C), valid (N,) bool marks real vs padded
images, pixel_weight (N, H, W, 1) or None), ``compute(state) -> float |
list[float]`` (once, at the end, on host). Nothing syncs to host per batch; the
states of a batch split in two add up to the state of the whole batch, so
streaming equals one-shot evaluation.

One prediction rule (:mod:`jaxseg.metrics.modes`): the collection's ``mode`` —
'binary' (C = 1, probability > threshold), 'multiclass' (argmax over softmax
channels, one-hot masks) or 'multilabel' (probability > threshold per class);
default 'binary' for one class, else 'multiclass' — turns probabilities into
the masks every confusion and distance metric scores (:func:`predict_masks`,
the function ``jaxseg.predict`` uses too). Pixels of ``pixel_weight`` 0 count
in no metric (confusion counts, ranking histograms, distances — there they are
neither prediction nor ground truth); an image without a counted pixel is left
out of per-image means like a padded one.

Metrics (names users know; parameters per metric through a spec string, see
:mod:`jaxseg.metrics.spec`; averages with scikit-learn's names and definitions):

  confusion, over every pixel of the set (thesis §5.1):
    dice, jaccard, precision, recall, specificity, balanced_accuracy
    params: threshold (unused in multiclass mode),
            average='macro'|'micro'|'weighted'|'samples'|'none', per_image=False
            (True: mean over images of per-image scores), include_background
    'weighted': per-class scores weighted by support (ground-truth pixels per class);
    'samples': per image the micro score, then the mean over images.
    balanced_accuracy in multiclass mode is scikit-learn's balanced_accuracy_score
    (mean recall over the classes present): average 'macro' or 'samples' (per image).
  ranking, over every pixel of the set (scikit-learn's definitions):
    roc_auc, average_precision
    params: average='macro'|'micro'|'weighted'|'samples'|'none', include_background,
            multi_class='ovr'|'ovo' (roc_auc, multiclass mode; 'ovo' with average
            'macro'|'weighted'), mantissa_bits=16, octaves=24
  distance, per image then averaged over images:
    hausdorff (percentile=100), hausdorff95, average_hausdorff,
    balanced_average_hausdorff, modified_average_hausdorff = mahd (percentile=95)
    params: threshold, on='region'|'boundary', normalize=False,
            spacing=1.0 (or (row, col)), average='macro'|'none', include_background

``include_background=False`` drops channel 0 of multi-class (C > 1) masks (after
the prediction: the argmax is over every channel).
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
from jaxseg.metrics.confusion import (SCORES, average_scores, confusion_counts,
                                      multiclass_balanced_accuracy)
from jaxseg.metrics.modes import check_mode, image_weights, pixel_mask, predict_masks
from jaxseg.metrics.spec import MetricSpec, parse_spec
from jaxseg.ops.shapes import check_nhwc
from jaxseg.registry import Registry


class Metric(NamedTuple):
    init: Callable[[], Any]
    # update(state, probs, labels, valid, pixel_weight) -> state
    update: Callable[[Any, Any, Any, Any, Any], Any]
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


def _check_channels(x, num_classes: int):
    if x.shape[-1] != num_classes:
        raise ValueError(f"expected {num_classes} channel(s), got shape {x.shape}; "
                         "pass num_classes to MetricCollection")


def _select(x, num_classes: int, include_background: bool):
    """Channels scored: all, or all but channel 0 of a multi-class mask."""
    _check_channels(x, num_classes)
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
    """Mean over counted images of ``values_fn(probs, labels, valid, pixel_weight)``: (N,) or, per
    class, (N, width). Padded images and images whose pixels are all ignored do not count."""

    def init():
        return {"sum": jnp.zeros((width if per_class else 1,), jnp.float32),
                "count": jnp.zeros((), jnp.float32)}

    def update(state, probs, labels, valid, pixel_weight=None):
        v = values_fn(probs, labels, valid, pixel_weight).reshape(probs.shape[0], -1)
        w = image_weights("MetricCollection.update", probs, valid, pixel_weight)
        return {"sum": state["sum"] + jnp.sum(jnp.where(w[:, None] > 0, v, 0.0), axis=0),
                "count": state["count"] + jnp.sum(w)}

    def compute(state):
        mean = np.asarray(state["sum"], np.float64) / max(float(state["count"]), 1.0)
        return _as_output(mean if per_class else mean[0])

    return Metric(init, update, compute, higher_is_better, first_class)


def confusion_metric(score: str, num_classes: int, threshold: float, mode: str | None = None,
                     average: str = "macro", per_image: bool = False,
                     include_background: bool = True) -> Metric:
    """A confusion-family score (``jaxseg.metrics.confusion.SCORES``) over the evaluation set.

    Prediction: :func:`jaxseg.metrics.predict_masks` ``(probs, mode, threshold)``.
    Default: counts TP/FP/FN/TN summed over every pixel of every image (thesis
    §5.1), scored once with ``average`` ('macro', 'micro', 'weighted', 'none').
    ``average='samples'``: per image the micro score, then the mean over images;
    ``per_image=True``: the mean over images of per-image ``average`` scores.
    balanced_accuracy in multiclass mode: scikit-learn's ``balanced_accuracy_score``
    (:func:`~jaxseg.metrics.confusion.multiclass_balanced_accuracy`), 'macro' or 'samples'.
    """
    mode = check_mode(mode, num_classes)
    _check_average(average, ("macro", "micro", "weighted", "samples", "none"))
    if per_image and average == "samples":
        raise ValueError("average='samples' is already per image; drop per_image=True")
    multiclass_ba = score == "balanced_accuracy" and mode == "multiclass"
    if multiclass_ba and average not in ("macro", "samples"):
        raise ValueError("balanced_accuracy in multiclass mode is scikit-learn's balanced_accuracy_score "
                         f"(mean recall over the classes present): average 'macro' or 'samples'; got {average!r}")
    score_fn = SCORES[score]
    c, first = _channels(num_classes, include_background)

    def counts(probs, labels, valid, pixel_weight):  # (N, C, 4)
        _check_channels(probs, num_classes)
        per_class = jnp.stack(confusion_counts(probs, labels, threshold, valid, mode, pixel_weight), -1)
        return per_class[:, first:]

    def scores(cnt, avg):
        return multiclass_balanced_accuracy(cnt) if multiclass_ba else average_scores(score_fn, cnt, avg)

    if per_image or average == "samples":
        avg = "micro" if average == "samples" else average
        return _per_image_metric(lambda p, y, v, w: scores(counts(p, y, None, w), avg),
                                 c, average == "none", True, first)

    def init():
        return jnp.zeros((c, 4), jnp.int32)

    def update(state, probs, labels, valid, pixel_weight=None):
        return state + jnp.sum(counts(probs, labels, valid, pixel_weight), axis=0)

    def compute(state):
        return _as_output(scores(jnp.asarray(np.asarray(state)), average))

    return Metric(init, update, compute, True, first,
                  ("confusion", num_classes, mode, None if mode == "multiclass" else threshold, first))


def _ovo_metric(num_classes: int, average: str, first: int, q: ranking.Quantizer) -> Metric:
    """Hand & Till's one-vs-one ROC AUC from the streamed (C, C, bins) pair histogram."""
    _check_average(average, ("macro", "weighted"))
    ranking.check_pair_histogram(num_classes, q)

    def init():
        return jnp.zeros((num_classes, num_classes, q.num_bins), jnp.int32)

    def update(state, probs, labels, valid, pixel_weight=None):
        _check_channels(probs, num_classes)
        return ranking.accumulate_pair_histogram(state, probs, labels, valid, q, pixel_weight)

    def compute(state):
        return ranking.roc_auc_ovo_from_pair_histogram(state, average, first)

    return Metric(init, update, compute, True, first, ("pair_histogram", num_classes, q))


def ranking_metric(kind: str, num_classes: int, threshold: float = 0.5, mode: str | None = None,
                   average: str = "macro", include_background: bool = True, multi_class: str = "ovr",
                   mantissa_bits: int = ranking.DEFAULT_MANTISSA_BITS,
                   octaves: int = ranking.DEFAULT_OCTAVES) -> Metric:
    """ROC AUC or AP over every pixel of the set from a streamed score histogram (``ranking``).

    ``threshold`` is accepted and ignored (ranking metrics use every threshold).
    ``multi_class='ovo'`` (roc_auc, multiclass mode): one-vs-one AUC from a (C, C, bins)
    histogram (memory: ``ranking.pair_histogram_bytes``; over 1 GiB refused).
    ``average='samples'``: per-image AUC/AP ranked exactly on device, mean over images.
    """
    mode = check_mode(mode, num_classes)
    q = ranking.Quantizer(mantissa_bits, octaves).validate()
    c, first = _channels(num_classes, include_background)
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"multi_class must be 'ovr' or 'ovo'; got {multi_class!r}")
    if multi_class == "ovo":
        if kind != "roc_auc":
            raise ValueError("multi_class='ovo' is defined for roc_auc only (as in scikit-learn)")
        if mode != "multiclass":
            raise ValueError(f"multi_class='ovo' needs mode='multiclass' (one class per pixel); mode is {mode!r}")
        return _ovo_metric(num_classes, average, first, q)
    _check_average(average, ("macro", "micro", "weighted", "samples", "none"))
    from_hist = {"roc_auc": ranking.roc_auc_from_histogram,
                 "average_precision": ranking.average_precision_from_histogram}[kind]

    def selected(probs, labels):
        return (_select(a, num_classes, include_background) for a in (probs, labels))

    if average == "samples":
        def values(probs, labels, valid, pixel_weight):
            auc, ap, _ = ranking.image_scores(*selected(probs, labels), None, pixel_weight)
            return auc if kind == "roc_auc" else ap

        return _per_image_metric(values, 1, False, True, first)

    def init():
        return jnp.zeros((c, q.num_bins, 2), jnp.int32)

    def update(state, probs, labels, valid, pixel_weight=None):
        return ranking.accumulate_histogram(state, *selected(probs, labels), valid, q, pixel_weight)

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
# name -> factory(num_classes=, threshold=, mode=, **params) -> Metric
METRICS = Registry("metric", inputs=("num_classes", "threshold", "mode"))


def distance_metric(name: str, num_classes: int, threshold: float, mode: str | None = None,
                    average: str = "macro", include_background: bool = True, **params) -> Metric:
    """A Hausdorff-family distance (``jaxseg.metrics.surface``) per image and class,
    averaged over images (and over classes for ``average='macro'``).

    The predicted masks are :func:`jaxseg.metrics.predict_masks` ``(probs, mode,
    threshold)``; ignored pixels (``pixel_weight`` 0) are off in both the prediction and
    the ground truth. ``params`` go to the distance function: on, normalize, spacing, percentile.
    """
    mode = check_mode(mode, num_classes)
    _check_average(average, ("macro", "none"))
    fn = _DISTANCES[name]
    allowed = set(inspect.signature(fn).parameters) - {"pred", "labels"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {sorted(unknown)}; "
                         f"allowed: {sorted(allowed | {'threshold', 'average', 'include_background'})}")
    fn = functools.partial(fn, **params)
    c, first = _channels(num_classes, include_background)

    def values(probs, labels, valid, pixel_weight):
        _check_channels(probs, num_classes)
        pred, y = predict_masks(probs, mode, threshold), jnp.asarray(labels) > 0.5
        w = pixel_mask("MetricCollection.update", probs, None, pixel_weight)
        if w is not None:
            pred, y = pred & w, y & w
        d = fn(pred[..., first:], y[..., first:])  # (N, C)
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


def build_metric(spec: str | Mapping[str, Any], threshold: float = 0.5, num_classes: int = 1,
                 mode: str | None = None) -> tuple[str, Metric]:
    """(key, Metric) for one spec; ValueError for an unknown name or parameter, or a ``mode``
    inconsistent with ``num_classes`` (binary needs 1 class, multiclass at least 2).

    ``mode``: 'binary' | 'multiclass' | 'multilabel'; None is 'binary' for one class, else
    'multiclass'. It is the whole collection's (config.model.mode): a spec cannot set it.
    """
    s: MetricSpec = parse_spec(spec)
    METRICS.get(s.name)  # ValueError listing the available names
    mode = check_mode(mode, num_classes)
    params = dict(s.params)
    if "mode" in params:
        raise ValueError(f"metric spec {spec!r}: mode is set for the whole collection "
                         "(MetricCollection(..., mode=config.model.mode)), not per metric")
    if params.get("on", "region") not in ("region", "boundary"):  # else found only at the first evaluation
        raise ValueError(f"metric spec {spec!r}: on must be 'region' or 'boundary'; got {params['on']!r}")
    threshold = float(params.pop("threshold", threshold))
    try:
        return s.key, METRICS.build(s.name, num_classes=num_classes, threshold=threshold, mode=mode,
                                    **params)
    except TypeError as e:
        raise ValueError(f"metric spec {spec!r}: {e}") from None


def higher_is_better(spec: str | Mapping[str, Any]) -> bool:
    """Whether larger values of this metric are better (False for distances)."""
    return parse_spec(spec).name not in _DISTANCES


class MetricCollection:
    """A named set of streaming metrics evaluated together.

    ``MetricCollection(config.eval.metrics, config.eval.threshold, num_classes,
    mode=config.model.mode)`` (mode None: 'binary' for one class, else 'multiclass';
    ValueError when inconsistent with num_classes); ``state = init()``,
    ``state = update(state, probs, labels, valid, pixel_weight=None)`` inside the
    jit-ed eval step (probs, labels (N, H, W, C), valid (N,), pixel_weight (N, H, W, 1)
    with 0 for ignored pixels — those count in no metric: neither prediction nor
    ground truth; other shapes raise ``ValueError``), ``compute(state) -> {key: float}``
    once on host (per-class values as ``key/<class>``).
    """

    def __init__(self, names: Sequence[str | Mapping[str, Any]], threshold: float = 0.5,
                 num_classes: int = 1, mode: str | None = None):
        self.mode = check_mode(mode, num_classes)
        self.threshold, self.num_classes = float(threshold), int(num_classes)
        built = [build_metric(n, threshold, num_classes, self.mode) for n in names]
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

    def update(self, state, probs, labels, valid, pixel_weight=None):
        check_nhwc("MetricCollection.update", probs=probs, labels=labels)
        pixel_mask("MetricCollection.update", probs, valid, pixel_weight)  # shape checks of valid, weights
        return {n: self.metrics[n].update(state[n], probs, labels, valid, pixel_weight) for n in state}

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
