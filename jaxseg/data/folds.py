"""K-fold cross-validation splits: deterministic in (seed, K), stratified, optionally grouped.

``config.data.num_folds = K`` and ``config.data.fold = k`` make fold k of K the
validation set and the other K − 1 folds the training set. The K folds of one
(seed, K) are disjoint and cover every example, so the K runs validate every
example exactly once ("out of fold").

Assignment (as scikit-learn's ``StratifiedKFold(shuffle=True)`` in spirit, our
own seeded rule): examples are permuted by ``default_rng([seed, K, 0xF01D])``;
within each stratum (e.g. "has foreground" / "background only") the permuted
examples are dealt to folds round-robin, the round-robin continuing across
strata, so every fold gets ⌊n_s/K⌋ or ⌈n_s/K⌉ examples of stratum s and the fold
sizes differ by at most one. With ``groups`` (e.g. the slide of every patch) the
groups are what is dealt, stratified by whether any member is positive, so no
group is on both sides.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from jaxseg.errors import ConfigError


def assign_folds(n: int, num_folds: int, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """The fold (0..K−1) of each of ``n`` examples, as described in the module docstring."""
    if num_folds < 2:
        raise ConfigError(f"config.data.num_folds={num_folds}: cross-validation needs at least 2 folds")
    if n < num_folds:
        raise ConfigError(f"config.data.num_folds={num_folds} folds need at least {num_folds} examples "
                          f"(or slides), found {n}")
    strata = np.zeros(n, np.int64) if strata is None else np.asarray(strata).astype(np.int64).reshape(-1)
    if strata.shape != (n,):
        raise ValueError(f"strata must have one entry per example: shape {strata.shape}, n = {n}")
    perm = np.random.default_rng([seed, num_folds, 0xF01D]).permutation(n)
    order = perm[np.argsort(strata[perm], kind="stable")]  # permuted, grouped by stratum
    folds = np.empty(n, np.int64)
    folds[order] = np.arange(n) % num_folds
    return folds


def fold_split(n: int, num_folds: int, fold: int, seed: int, strata: np.ndarray | None = None,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sorted index arrays of fold ``fold`` of ``num_folds``.

    ``strata``: per example, e.g. whether its mask has foreground. ``groups``: per example a group id
    (0..G−1); whole groups are assigned, stratified by whether any of their examples is positive.
    """
    if not 0 <= fold < num_folds:
        raise ConfigError(f"config.data.fold={fold} must be in 0..{num_folds - 1} (config.data.num_folds="
                          f"{num_folds})")
    if groups is None:
        folds = assign_folds(n, num_folds, seed, strata)
    else:
        groups = np.asarray(groups).reshape(-1)
        num_groups = int(groups.max()) + 1 if len(groups) else 0
        group_strata = None
        if strata is not None:
            group_strata = np.zeros(num_groups, np.int64)
            np.maximum.at(group_strata, groups, np.asarray(strata).astype(np.int64).reshape(-1))
        folds = assign_folds(num_groups, num_folds, seed, group_strata)[groups]
    is_val = folds == fold
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def cross_validating(data_config: Mapping) -> bool:
    """Whether ``config.data`` asks for a fold of K-fold cross-validation."""
    return bool(dict(data_config).get("num_folds"))


def split(n: int, data_config: Mapping, strata: np.ndarray | None = None, groups: np.ndarray | None = None,
          default_val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices by ``config.data``: fold ``fold`` of ``num_folds`` when set, else a seeded
    random ``val_fraction`` of the examples (``pipeline.seeded_split``; ``groups`` are for folds only)."""
    from jaxseg.data.pipeline import seeded_split

    d = dict(data_config)
    seed = int(d.get("seed", 0) or 0)
    if cross_validating(d):
        return fold_split(n, int(d["num_folds"]), int(d.get("fold", 0) or 0), seed, strata, groups)
    return seeded_split(n, d.get("val_fraction") or default_val_fraction, seed)


def has_foreground(mask: np.ndarray, mode: str = "binary") -> np.ndarray:
    """Per image of an NHWC mask: whether any foreground pixel is set (the stratum of the folds) —
    any channel for 'binary'/'multilabel', channels 1.. for 'multiclass' (channel 0 is background)."""
    mask = np.asarray(mask)
    if mask.ndim != 4:
        raise ValueError(f"has_foreground expects NHWC masks, got shape {mask.shape}")
    fg = mask[..., 1:] if mode == "multiclass" and mask.shape[-1] > 1 else mask
    return fg.reshape(len(fg), -1).max(axis=1, initial=0) > 0


def split_arrays(arrays: Mapping[str, np.ndarray], data_config: Mapping, mode: str = "binary",
                 groups: np.ndarray | None = None) -> tuple[dict, dict]:
    """(train, val) dicts of ``arrays`` (each indexed by example) split by ``split``; folds are
    stratified by ``has_foreground(arrays['mask'], mode)``."""
    n = len(arrays["image"])
    strata = has_foreground(arrays["mask"], mode) if cross_validating(data_config) else None
    train_idx, val_idx = split(n, data_config, strata, groups)
    return ({k: v[train_idx] for k, v in arrays.items()}, {k: v[val_idx] for k, v in arrays.items()})
