"""Which examples each batch of an epoch holds: the plan every source follows (no TensorFlow here).

The training order of epoch e is a function of (seed, e) only — a permutation, or with
per-example weights a draw with replacement (the thesis's non-uniform sampling, Tables 7-8) —
cut into global batches of ``batch_size``; with P processes, process p serves rows
[p·n, (p+1)·n) of every global batch (n = batch_size / P). ``pipeline.ArraySource`` (arrays in
memory) and ``streaming.StreamingSource`` (records in shards) both follow this plan, which is
why they serve the same batches and why a resumed run sees those of an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

from jaxseg.errors import ConfigError


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch``: a permutation depending on (seed, epoch) only."""
    return np.random.default_rng([seed, epoch, 0x5E6]).permutation(n)


def epoch_sample(weights: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """``len(weights)`` indices drawn with replacement, P(i) proportional to ``weights[i]``."""
    p = np.asarray(weights, np.float64)
    return np.random.default_rng([seed, epoch, 0x5E7]).choice(len(p), size=len(p), p=p / p.sum())


class BatchPlan:
    """Which examples every batch holds — the part a source in memory and one streaming from shards share.

    Global batch s of epoch e is row s of ``epoch_indices(e)`` (a function of (seed, e) only: the
    permutation of ``epoch_permutation`` or the weighted draw of ``epoch_sample``), and process p
    serves rows [p·n, (p+1)·n) of it (n = ``local_batch_size``). Subclasses give ``num_train`` and
    ``num_val`` and call ``_check_plan()`` once they know them.
    """

    def _set_plan(self, batch_size: int, seed: int, process_index: int, process_count: int,
                  sample_weights: np.ndarray | None) -> None:
        self.sample_weights = None if sample_weights is None else np.asarray(sample_weights, np.float64)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.process_index, self.process_count = process_index, process_count

    def _check_plan(self) -> None:
        if self.batch_size % self.process_count:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by the {self.process_count} processes")
        if self.num_train < self.batch_size:
            raise ConfigError(f"the training set has {self.num_train} examples, fewer than one batch of "
                              f"{self.batch_size} (config.train.batch_size): lower the batch size or add data")
        if self.sample_weights is not None and (
                self.sample_weights.shape != (self.num_train,) or (self.sample_weights < 0).any()
                or not self.sample_weights.sum() > 0):
            raise ValueError(f"sample_weights must be {self.num_train} non-negative numbers, not all zero")

    @property
    def steps_per_epoch(self) -> int:
        return self.num_train // self.batch_size

    @property
    def eval_steps(self) -> int:
        return -(-self.num_val // self.batch_size)

    @property
    def local_batch_size(self) -> int:
        """This process's rows of every global batch: ``batch_size / process_count``."""
        return self.batch_size // self.process_count

    def _rows(self) -> slice:
        """Process p serves rows [p·n, (p+1)·n) of each global batch (n = ``local_batch_size``): the mesh
        orders devices process by process, so these rows land on its own devices (``parallel.put_batch``)."""
        n = self.local_batch_size
        return slice(self.process_index * n, (self.process_index + 1) * n)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """(steps_per_epoch, batch_size) training example indices of epoch ``epoch``: row s is global batch s,
        the same on every process (it depends on (seed, epoch) only)."""
        if self.sample_weights is None:
            perm = epoch_permutation(self.num_train, self.seed, epoch)
        else:
            perm = epoch_sample(self.sample_weights, self.seed, epoch)
        return perm[: self.steps_per_epoch * self.batch_size].reshape(self.steps_per_epoch, self.batch_size)

    def local_train_indices(self, epoch: int) -> np.ndarray:
        """(steps_per_epoch, local_batch_size): the examples this process gathers in epoch ``epoch``."""
        return self.epoch_indices(epoch)[:, self._rows()]

    def local_eval_rows(self, step: int) -> tuple[int, int]:
        """[start, stop) of the validation examples this process evaluates in eval batch ``step`` (its rows
        of the global batch, cut at the end of the set; possibly empty)."""
        n = self.local_batch_size
        start = min(step * self.batch_size + self.process_index * n, self.num_val)
        return start, min(start + n, self.num_val)

    def padded_eval_batch(self, batch: dict, step: int) -> dict:
        """Eval batch ``step``'s rows (``local_eval_rows``) padded with zeros to ``local_batch_size``,
        with ``valid`` marking the real ones, so padding never counts in a metric."""
        n = self.local_batch_size
        start, stop = self.local_eval_rows(step)
        pad = n - (stop - start)
        if pad:
            batch = {k: np.concatenate([v, np.zeros((pad,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
        return dict(batch, valid=np.arange(n) < stop - start)
