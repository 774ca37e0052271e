"""Datasets beyond memory: every dataset prepared once into shards, then trained on by streaming them.

``config.data.in_memory`` picks the path (:func:`storage`):

* ``True``: the arrays in memory (``jaxseg.data.pipeline.ArraySource``), as before;
* ``False``: shards (``jaxseg.data.shards``), read by index while training (:class:`StreamingSource`);
* ``'auto'`` (default): in memory when the arrays would take at most
  ``config.data.memory_budget_gb`` (each dataset's ``in_memory_bytes``, estimated from file
  listings before anything is decoded), else streaming — one line on stderr says so.

**Preparing.** :func:`prepare` builds a dataset's shard set under
``<cache_dir>/shards/<dataset>-<digest>/``, the digest of a ``jaxseg.data.cache``
source record: the source's fingerprint (resolved root; name, size and mtime of
every file) and every parameter that shapes the records (image size, channels,
classes, mode, ignore label, task, tiling, ``skip_bad_files``, the shard format).
Parameters that only choose examples — ``val_fraction``, ``seed``, ``num_folds``,
``fold``, COVID-QU-Ex ``categories`` — do not: the shards hold the dataset's whole
pool with per-example metadata, and the split is computed when training starts,
so the K folds of a cross-validation share one shard set. A changed file or
parameter lands in a new folder (one line on stderr says why). ``python -m
jaxseg.prepare --config=...`` builds ahead of time with a progress bar; training
builds whatever is missing.

**Streaming.** :class:`StreamingSource` serves exactly the batches of the
in-memory ``ArraySource`` of the same config: the same epoch order
(``epoch_permutation(n, seed, epoch)`` or ``epoch_sample``), the same crops, the same
augmentation seeds ``(seed, epoch, step)``, the same float conversion — so streaming
and in-memory runs end with the same numbers. A batch is ``batch_size`` preads
(decoded in parallel by tf.data, then converted and augmented as in ``ArraySource``),
so resident memory holds the prefetched batches and the index arrays, never the
dataset. ``train_batches(epoch, start_step)`` starts at any step without reading
the batches before it: a resumed run seeks instead of replaying its epoch.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import glob
import importlib
import logging
import os
import sys
import time
from typing import Callable, Iterator

import numpy as np

from jaxseg.data import cache, shards
from jaxseg.data.batching import BatchPlan
from jaxseg.errors import ConfigError

log = logging.getLogger(__name__)
Batch = dict[str, np.ndarray]

# dataset name -> the module whose shard_plan / shard_split / in_memory_bytes build and split its shards
SHARDED = {"synthetic": "jaxseg.data.sources.synthetic", "folder": "jaxseg.data.sources.folder",
           "covid_qu_ex": "jaxseg.data.sources.covid_qu_ex",
           "histopathology": "jaxseg.data.sources.histopathology"}
DEFAULT_BUDGET_GB = 4.0
READ_THREADS = 8  # batches read at once (preads release the GIL)


@dataclasses.dataclass
class Plan:
    """How to build one dataset's shards: its cache key, and ``open() -> (example count, examples)``.

    The examples iterator yields ``(arrays, metadata)`` per kept example, or a message string per
    example left out (``skip_bad_files``); ``extra`` (filled by then) goes into ``index.json``.
    """

    name: str
    source: dict
    open: Callable[[], tuple[int, Iterator]]
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Split:
    """Record indices of the training and validation examples, in the in-memory path's order."""

    train: np.ndarray
    val: np.ndarray
    sample_weights: np.ndarray | None = None
    augment_overrides: dict = dataclasses.field(default_factory=dict)


def _module(name: str):
    if name not in SHARDED:
        raise ConfigError(f"config.data.name={name!r} has no streaming path (datasets with one: "
                          f"{', '.join(SHARDED)}); set config.data.in_memory=True")
    return importlib.import_module(SHARDED[name])


def in_memory_setting(data) -> bool | str:
    """``config.data.in_memory`` as True, False or 'auto' (also from the strings 'true'/'false')."""
    value = data.get("in_memory", "auto")
    if isinstance(value, str) and value.lower() in ("true", "false", "auto"):
        value = {"true": True, "false": False, "auto": "auto"}[value.lower()]
    if value not in (True, False, "auto") or isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ConfigError(f"config.data.in_memory={value!r}; use True, False or 'auto'")
    return value


def memory_budget_bytes(data) -> float:
    budget = data.get("memory_budget_gb", DEFAULT_BUDGET_GB)
    if not isinstance(budget, (int, float)) or budget < 0:
        raise ConfigError(f"config.data.memory_budget_gb={budget!r} must be a non-negative number of GB")
    return float(budget) * 1e9


def storage(config) -> str:
    """'memory' or 'streaming': what ``config.data.in_memory`` (and for 'auto' the budget) asks for."""
    d = config.data
    setting = in_memory_setting(d)
    if setting is True:
        return "memory"
    if setting is False:
        _module(d.name)
        return "streaming"
    budget = memory_budget_bytes(d)
    if d.name not in SHARDED:
        return "memory"
    need = _module(d.name).in_memory_bytes(config)
    if need <= budget:
        return "memory"
    print(f"data: the {d.name} arrays would take ~{need / 1e9:.1f} GB in memory, over "
          f"config.data.memory_budget_gb={budget / 1e9:g}: streaming them from shards", file=sys.stderr)
    return "streaming"


def shard_home(config) -> str:
    return os.path.join(cache.cache_root(config.data), "shards")


def prepare(config, progress: bool = False) -> tuple[shards.ShardReader, bool]:
    """(reader, built): the shards of ``config``'s dataset, built first when no current copy exists."""
    plan = _module(config.data.name).shard_plan(config)
    home = shard_home(config)
    folder = os.path.join(home, f"{plan.name}-{cache.digest(plan.source)}")
    index = shards.read_index(folder)
    if index is not None and index.get("source") == plan.source:
        return shards.ShardReader(folder, index), False
    pattern = os.path.join(glob.escape(home), f"{plan.name}-*", shards.INDEX)
    earlier = [r["source"] for r in cache.earlier_records(pattern, exclude=os.path.join(folder, shards.INDEX))
               if isinstance(r.get("source"), dict)]
    reason = "the earlier build here did not finish" if os.path.isdir(folder) else \
        cache.change_reason(plan.source, earlier)
    print(f"{plan.name}: preparing shards in {folder} ({reason})", file=sys.stderr)
    os.makedirs(home, exist_ok=True)
    return shards.ShardReader(folder, build(plan, folder, progress)), True


def build(plan: Plan, folder: str, progress: bool = False) -> dict:
    """Writes ``plan``'s examples into the shard set ``folder``; returns its index."""
    from tqdm.auto import tqdm

    from jaxseg.data.tf_devices import hide_accelerators_from_tensorflow

    hide_accelerators_from_tensorflow()  # TensorFlow writes the shards (and reads TFDS and tile caches)
    total, examples = plan.open()
    skipped = []
    with shards.ShardWriter(folder) as writer, tqdm(total=total, unit="ex", desc=f"prepare {plan.name}",
                                                    disable=not progress, dynamic_ncols=True) as bar:
        for item in examples:
            if isinstance(item, str):
                skipped.append(item)
                log.warning("skipped bad file: %s", item)
            else:
                writer.add(item[0], **item[1])
            bar.update(1)
        return writer.finish(plan.source, dict(plan.extra, skipped=skipped))


def ordered_map(fn, items, workers: int = 4, window: int = 64) -> Iterator:
    """``map(fn, items)`` on a thread pool, results in order, at most ``window`` in flight."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def strata(meta: dict, mode: str, num_classes: int) -> np.ndarray:
    """Per example whether its mask has foreground, as ``folds.has_foreground(mask, mode)`` says —
    from the flags ``fg`` (any channel) and ``fg1`` (any channel but the first) stored per example."""
    return np.asarray(meta["fg1"] if mode == "multiclass" and num_classes > 1 else meta["fg"], bool)


def foreground_flags(mask: np.ndarray) -> dict:
    """The metadata :func:`strata` reads, for one (H, W, C) mask."""
    return {"fg": bool(mask.any()), "fg1": bool(mask[..., 1:].any())}


def load(config, process_index: int = 0, process_count: int = 1) -> "StreamingSource":
    """The streaming source of ``config``'s dataset (its shards prepared first when needed)."""
    from jaxseg.data.augment.host import AugmentConfig, make_augment

    reader, _ = prepare(config)
    for message in reader.index.get("skipped", []):
        log.warning("skipped bad file: %s", message)
    split = _module(config.data.name).shard_split(reader, config)
    aug = AugmentConfig.from_config(config.data, **split.augment_overrides)
    return StreamingSource(reader, split.train, split.val, config.train.batch_size, seed=config.seed,
                           augment=make_augment(aug), process_index=process_index, process_count=process_count,
                           sample_weights=split.sample_weights, augment_config=aug,
                           train_crop=None if aug.augment else aug.crop_size, val_crop=aug.crop_size)


def _crop(batch: Batch, size: int | None) -> Batch:
    """Centre ``size``² crops of the spatial entries of an NHWC batch (``augment.host.center_crop``)."""
    if size is None:
        return batch
    from jaxseg.data.augment.host import center_crop

    return center_crop(batch, size)


class StreamingSource(BatchPlan):
    """Train/validation batches read from shards by index; the interface of ``pipeline.ArraySource``.

    Args:
      reader: a ``shards.ShardReader``.
      train, val: record indices of the training and validation examples (their order as in memory).
      batch_size, seed, augment, process_index, process_count, sample_weights, augment_config:
        as ``ArraySource``'s.
      train_crop, val_crop: centre crops applied as read (``source_from_arrays``'s crops).
    """

    def __init__(self, reader: shards.ShardReader, train, val, batch_size: int, seed: int = 0,
                 augment: Callable | None = None, process_index: int = 0, process_count: int = 1,
                 sample_weights: np.ndarray | None = None, augment_config=None,
                 train_crop: int | None = None, val_crop: int | None = None):
        self.reader = reader
        self.train_index = np.asarray(train, np.int64).reshape(-1)
        self.val_index = np.asarray(val, np.int64).reshape(-1)
        self._set_plan(batch_size, seed, process_index, process_count, sample_weights)
        self.augment, self.augment_config = augment, augment_config
        self.train_crop, self.val_crop = train_crop, val_crop
        shapes = reader.shapes()
        for size in {train_crop, val_crop} - {None}:
            h, w = shapes["image"][:2]
            if size > min(h, w):
                raise ValueError(f"crop size {size} is larger than the {h}x{w} image records")
        self._check_plan()

    @property
    def num_train(self) -> int:
        return len(self.train_index)

    @property
    def num_val(self) -> int:
        return len(self.val_index)

    @property
    def image_shape(self) -> tuple[int, ...]:
        h, w, c = self.reader.shapes()["image"]
        return (self.train_crop, self.train_crop, c) if self.train_crop else (h, w, c)

    @property
    def mask_channels(self) -> int:
        return int(self.reader.shapes()["mask"][-1])

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Yields the host-local batches of epoch ``epoch`` from step ``start_step`` on; the batches
        before it are not read (a resumed run seeks to its step).

        Host augmentation draws its random numbers per global batch, so with several processes each
        reads and augments the whole global batch and keeps its rows (as ``ArraySource``).
        """
        import tensorflow as tf

        from jaxseg.data.pipeline import _tf_float

        steps = self.steps_per_epoch
        if not 0 <= start_step <= steps:
            raise ValueError(f"start_step {start_step} is outside the epoch's 0..{steps} steps")
        whole = self.augment is not None and self.process_count > 1
        records = self.train_index[self.epoch_indices(epoch) if whole else self.local_train_indices(epoch)]
        keys, dtypes, shapes = list(self.reader.spec), self.reader.dtypes(), self.reader.shapes()
        if self.train_crop:
            shapes = {k: (self.train_crop, self.train_crop) + s[2:] for k, s in shapes.items()}

        def read(step):
            batch = _crop(self.reader.read(records[int(step)]), self.train_crop)
            return [batch[k] for k in keys]

        def fetch(step):
            out = tf.numpy_function(read, [step], [tf.as_dtype(dtypes[k]) for k in keys], stateful=False)
            batch = _tf_float({k: tf.ensure_shape(t, (records.shape[1],) + tuple(shapes[k]))
                               for k, t in zip(keys, out)})
            if self.augment is not None:
                batch = self.augment(batch, tf.stack([tf.cast(self.seed, tf.int64) * 1_000_003 + epoch, step]))
            return batch

        ds = tf.data.Dataset.range(start_step, steps).map(fetch, num_parallel_calls=READ_THREADS, deterministic=True)
        for batch in ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            yield {k: v[self._rows()] for k, v in batch.items()} if whole else batch

    def _eval_batch(self, step: int) -> Batch:
        from jaxseg.data.pipeline import _np_float

        start, stop = self.local_eval_rows(step)
        return self.padded_eval_batch(_np_float(_crop(self.reader.read(self.val_index[start:stop]), self.val_crop)),
                                      step)

    def eval_batches(self) -> Iterator[Batch]:
        """Validation batches in order (host-local rows); the last is padded and marked by ``valid``."""
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pending = collections.deque()
            try:
                for step in range(self.eval_steps):
                    pending.append(pool.submit(self._eval_batch, step))
                    if len(pending) >= 3:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for f in pending:
                    f.cancel()


def prepare_command(config, progress: bool = True) -> str:
    """What ``python -m jaxseg.prepare`` does: build (or find) the shards; returns the summary line."""
    t0 = time.perf_counter()
    reader, built = prepare(config, progress=progress)
    size = sum(os.path.getsize(p) for p in reader.paths)
    what = f"{reader.count} examples, {len(reader.paths)} shard(s), {size / 1e9:.2f} GB"
    skipped = len(reader.index.get("skipped", []))
    if skipped:
        what += f", {skipped} bad file(s) left out"
    if built:
        return f"prepared {reader.folder} ({what}) in {time.perf_counter() - t0:.1f} s"
    return f"up to date: {reader.folder} ({what})"
