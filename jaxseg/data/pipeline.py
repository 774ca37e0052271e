"""tf.data input pipeline over in-memory arrays (decoded once, cached).

Every dataset ends up as arrays (or a cache of them) served through the same
``ArraySource``: a per-epoch seeded shuffle, batching, optional augmentation,
and prefetch. The order of epoch ``e`` depends only on ``(seed, e)``, so a run
resumed at an epoch boundary sees exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Mapping

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402  (data layer only: see DESIGN.md)

tf.config.set_visible_devices([], "GPU")  # never let TF take accelerator memory from JAX

Batch = dict[str, np.ndarray]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch``: a permutation depending on (seed, epoch) only."""
    return np.random.default_rng([seed, epoch, 0x5E6]).permutation(n)


class ArraySource:
    """Train/validation batches from dicts of NHWC arrays.

    Args:
      train, val: dicts with at least ``image`` and ``mask`` arrays of equal length.
      batch_size: the global batch size (split over processes in multi-host runs).
      seed: shuffle seed.
      augment: optional ``fn(batch_dict_of_tf_tensors, seed_tensor) -> batch`` run in tf.data
        on each training batch with a stateless seed derived from (seed, epoch, step).
    """

    def __init__(self, train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray],
                 batch_size: int, seed: int = 0, augment: Callable | None = None,
                 process_index: int = 0, process_count: int = 1):
        self.train = {k: np.asarray(v) for k, v in train.items()}
        self.val = {k: np.asarray(v) for k, v in val.items()}
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = augment
        self.process_index, self.process_count = process_index, process_count
        if self.batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {process_count} processes")
        if self.num_train < self.batch_size:
            raise ValueError(f"the training set has {self.num_train} examples, fewer than one batch "
                             f"of {self.batch_size}")

    @property
    def num_train(self) -> int:
        return len(self.train["image"])

    @property
    def num_val(self) -> int:
        return len(self.val["image"])

    @property
    def steps_per_epoch(self) -> int:
        return self.num_train // self.batch_size

    @property
    def eval_steps(self) -> int:
        return -(-self.num_val // self.batch_size)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train["image"].shape[1:])

    def _local(self, batch: Batch) -> Batch:
        if self.process_count == 1:
            return batch
        n = self.batch_size // self.process_count
        sl = slice(self.process_index * n, (self.process_index + 1) * n)
        return {k: v[sl] for k, v in batch.items()}

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """Yields ``steps_per_epoch`` host-local batches of epoch ``epoch``."""
        perm = epoch_permutation(self.num_train, self.seed, epoch)[: self.steps_per_epoch * self.batch_size]
        arrays = {k: v for k, v in self.train.items()}
        ds = tf.data.Dataset.from_tensor_slices(perm.astype(np.int64))
        ds = ds.batch(self.batch_size, drop_remainder=True)
        tensors = {k: tf.constant(v) for k, v in arrays.items()}
        ds = ds.map(lambda idx: {k: tf.gather(t, idx) for k, t in tensors.items()},
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if self.augment is not None:
            steps = tf.data.Dataset.range(self.steps_per_epoch)
            ds = tf.data.Dataset.zip((ds, steps)).map(
                lambda b, s: self.augment(b, tf.stack([tf.cast(self.seed, tf.int64) * 1_000_003 + epoch, s])),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.prefetch(tf.data.AUTOTUNE)
        for batch in ds.as_numpy_iterator():
            yield self._local(batch)

    def eval_batches(self) -> Iterator[Batch]:
        """Validation batches in order; the last is padded and marked by ``valid``."""
        n, bs = self.num_val, self.batch_size
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            batch = {k: v[start:stop] for k, v in self.val.items()}
            pad = bs - (stop - start)
            valid = np.ones((bs,), bool)
            if pad:
                valid[stop - start:] = False
                batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)])
                         for k, v in batch.items()}
            batch["valid"] = valid
            yield self._local(batch)
