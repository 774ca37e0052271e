"""Small shared fixtures for tests: a tiny config and a record comparison."""

from __future__ import annotations

import ml_collections

from configs import default as default_config


def tiny_config(**train) -> ml_collections.ConfigDict:
    """The smoke variant of configs/default.py, shrunk further for tests."""
    c = default_config.get_config("smoke")
    c.data.num_train, c.data.num_val = 16, 12
    c.model.features, c.model.depth = 4, 2
    c.train.progress = False
    c.train.batch_size = 8
    for k, v in train.items():
        c.train[k] = v
    return c


def comparable(record: dict) -> dict:
    """A metrics record without wall-clock fields."""
    return {k: v for k, v in record.items() if not k.startswith("time/")}
