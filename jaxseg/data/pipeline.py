"""tf.data input pipeline over in-memory arrays (decoded once, cached).

Every dataset ends up as arrays (or a cache of them) served through the same
``ArraySource``: a per-epoch seeded shuffle, batching, optional augmentation,
and prefetch. The order of epoch ``e`` depends only on ``(seed, e)``, so a run
resumed at an epoch boundary sees exactly the batches of an uninterrupted run.

Real datasets keep their arrays as ``uint8`` (a quarter of the memory): an
``image`` stored as ``uint8`` is served as float32 in [0, 1] (``v / 255``) and a
``uint8`` ``mask`` as float32 {0, 1}, so batches always follow the NHWC float32
convention. With ``sample_weights`` an epoch draws its examples with
replacement, with probabilities proportional to the weights (the thesis's
"non-uniform sampling", Tables 7-8), still determined by (seed, epoch).
"""

from __future__ import annotations

from typing import Callable, Iterator, Mapping

import numpy as np
import tensorflow as tf  # the data layer only (docs/architecture.md); jaxseg.runtime keeps it off GPUs

from jaxseg.data.batching import BatchPlan, epoch_permutation, epoch_sample  # noqa: F401 (re-exported)

Batch = dict[str, np.ndarray]


def seeded_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sorted index arrays: ``round(n * val_fraction)`` (at least 1) random examples validate."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if n < 2:
        raise ValueError(f"cannot split {n} example(s) into training and validation sets")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    perm = np.random.default_rng([seed, 0xC0F1D]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _as_float(batch, cast, scale):
    """uint8 ``image`` -> float32 / 255 and uint8 ``mask`` -> float32; other entries unchanged."""
    out = dict(batch)
    for key, factor in (("image", 1.0 / 255.0), ("mask", 1.0), ("pixel_weight", 1.0)):
        if key in out and out[key].dtype in (np.uint8, tf.uint8):
            out[key] = scale(cast(out[key]), factor)
    return out


def _tf_float(batch):
    return _as_float(batch, lambda x: tf.cast(x, tf.float32), lambda x, f: x * f if f != 1.0 else x)


def _np_float(batch):
    return _as_float(batch, lambda x: x.astype(np.float32), lambda x, f: x * np.float32(f) if f != 1.0 else x)


class ArraySource(BatchPlan):
    """Train/validation batches from dicts of NHWC arrays.

    Args:
      train, val: dicts with at least ``image`` and ``mask`` arrays of equal length.
      batch_size: the global batch size (split over processes in multi-host runs).
      process_index, process_count: this process among several (``jax.process_index()``,
        ``jax.process_count()``); it serves only its ``batch_size / process_count`` rows of each
        global batch, training and validation alike.
      seed: shuffle seed.
      augment: optional ``fn(batch_dict_of_tf_tensors, seed_tensor) -> batch`` run in tf.data
        on each training batch with a stateless seed derived from (seed, epoch, step).
      sample_weights: optional per-training-example weights for non-uniform sampling.
      augment_config: the ``AugmentConfig`` of ``config.data``; the train step applies it
        itself when it says ``augment_on='device'`` (None: no device augmentation).
    """

    def __init__(self, train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray],
                 batch_size: int, seed: int = 0, augment: Callable | None = None,
                 process_index: int = 0, process_count: int = 1,
                 sample_weights: np.ndarray | None = None, augment_config=None):
        self._set_plan(batch_size, seed, process_index, process_count, sample_weights)
        self.train = {k: np.asarray(v) for k, v in train.items()}
        self.val = {k: np.asarray(v) for k, v in val.items()}
        self.augment = augment
        self.augment_config = augment_config
        self._check_plan()

    @property
    def num_train(self) -> int:
        return len(self.train["image"])

    @property
    def num_val(self) -> int:
        return len(self.val["image"])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train["image"].shape[1:])

    @property
    def mask_channels(self) -> int:
        """C of the (N, H, W, C) masks: the number of classes the data label."""
        return int(self.train["mask"].shape[-1])

    def _train_tensors(self) -> dict:
        """The training arrays as TensorFlow tensors, made once (not copied again every epoch)."""
        if getattr(self, "_tensors", None) is None:
            self._tensors = {k: tf.constant(v) for k, v in self.train.items()}
        return self._tensors

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Yields the host-local batches ``start_step..steps_per_epoch-1`` of epoch ``epoch``: this process's
        rows of each global batch, gathered (and decoded to float) on their own — no process touches the
        others' rows. A resumed epoch starts at its step without gathering the batches before it.

        Host augmentation (``augment_on='host'``) draws its random numbers per global batch, so with
        several processes each still augments the whole global batch and keeps its rows: the same numbers
        as one process (the default on-device augmentation runs inside the global step and has no such cost).
        """
        whole = self.augment is not None and self.process_count > 1
        idx = (self.epoch_indices(epoch) if whole else self.local_train_indices(epoch))[start_step:]
        ds = tf.data.Dataset.from_tensor_slices(idx.astype(np.int64))  # one element per step
        tensors = self._train_tensors()
        ds = ds.map(lambda i: _tf_float({k: tf.gather(t, i) for k, t in tensors.items()}),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if self.augment is not None:
            steps = tf.data.Dataset.range(start_step, self.steps_per_epoch)
            ds = tf.data.Dataset.zip((ds, steps)).map(
                lambda b, s: self.augment(b, tf.stack([tf.cast(self.seed, tf.int64) * 1_000_003 + epoch, s])),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if whole:
            rows = self._rows()
            ds = ds.map(lambda b: {k: v[rows] for k, v in b.items()})
        ds = ds.prefetch(tf.data.AUTOTUNE)
        yield from ds.as_numpy_iterator()

    def eval_batches(self) -> Iterator[Batch]:
        """Validation batches in order (this process's rows of each); padding marked by ``valid``.

        Every process yields ``eval_steps`` batches of ``local_batch_size`` rows — the last ones padded
        with zeros and ``valid=False``, so padding never counts in a metric.
        """
        for step in range(self.eval_steps):
            start, stop = self.local_eval_rows(step)
            yield self.padded_eval_batch(_np_float({k: v[start:stop] for k, v in self.val.items()}), step)


def source_from_arrays(train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray], config,
                       process_index: int = 0, process_count: int = 1,
                       sample_weights: np.ndarray | None = None, **augment_overrides) -> ArraySource:
    """An ``ArraySource`` with the augmentation and crops that ``config.data`` asks for.

    With ``crop_size`` set, validation arrays are centre-cropped (thesis Tables 7-8,
    "crop validation images"), and so are training arrays when augmentation is off.
    With ``augment_on='device'`` the batches leave tf.data unaugmented; the source's
    ``augment_config`` tells the train step what to do.
    """
    from jaxseg.data.augment.host import AugmentConfig, center_crop, make_augment

    aug = AugmentConfig.from_config(config.data, **augment_overrides)
    if aug.crop_size is not None:
        val = center_crop(val, aug.crop_size)
        if not aug.augment:
            train = center_crop(train, aug.crop_size)
    return ArraySource(train, val, config.train.batch_size, seed=config.seed, augment=make_augment(aug),
                       process_index=process_index, process_count=process_count,
                       sample_weights=sample_weights, augment_config=aug)
