"""Datasets by name: ``get_source(config, process_index, process_count)``.

Every source serves the same interface (``jaxseg.data.pipeline.ArraySource``):
``train_batches(epoch)``, ``eval_batches()``, ``steps_per_epoch``, ``image_shape``.
TensorFlow is imported only inside this package.
"""

from __future__ import annotations

from typing import Callable

DATASETS = ("synthetic", "covid_qu_ex", "folder", "histopathology")


def _synthetic(config, process_index: int, process_count: int):
    """The built-in phantoms, with the augmentation ``config.data`` asks for (as every dataset)."""
    from jaxseg.data import synthetic
    from jaxseg.data.pipeline import source_from_arrays

    d = config.data
    train = synthetic.generate(d.num_train, d.image_size, d.task, seed=d.seed, start=0)
    val = synthetic.generate(d.num_val, d.image_size, d.task, seed=d.seed, start=d.num_train)
    return source_from_arrays(dict(image=train[0], mask=train[1]), dict(image=val[0], mask=val[1]), config,
                              process_index, process_count)


def _covid_qu_ex(config, process_index: int, process_count: int):
    from jaxseg.data import covid_qu_ex

    return covid_qu_ex.load(config, process_index, process_count)


def _folder(config, process_index: int, process_count: int):
    from jaxseg.data import folder

    return folder.load(config, process_index, process_count)


def _histopathology(config, process_index: int, process_count: int):
    from jaxseg.data import histopathology

    return histopathology.load(config, process_index, process_count)


_BUILDERS: dict[str, Callable] = {"synthetic": _synthetic, "covid_qu_ex": _covid_qu_ex, "folder": _folder,
                                  "histopathology": _histopathology}


def available() -> list[str]:
    return sorted(_BUILDERS)


def get_source(config, process_index: int = 0, process_count: int = 1):
    name = config.data.name
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    return _BUILDERS[name](config, process_index, process_count)
