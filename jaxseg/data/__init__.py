"""Datasets by name: ``get_source(config, process_index, process_count)``.

Every source serves the same interface (``jaxseg.data.pipeline.ArraySource``):
``train_batches(epoch)``, ``eval_batches()``, ``steps_per_epoch``, ``image_shape``.
``config.data.in_memory`` (True, False or 'auto': in memory up to
``config.data.memory_budget_gb``) chooses between the registered factory (arrays
in memory) and ``jaxseg.data.streaming`` (the same batches, read from shards
prepared once under the cache directory; ``python -m jaxseg.prepare``).
The datasets live in ``jaxseg.data.sources``; each is registered here by one
decorated factory that imports its module when called, so ``import jaxseg.data``
stays light (TensorFlow, imported only inside this package, loads on first use).
"""

from __future__ import annotations

from jaxseg.registry import Registry

DATASETS = Registry("dataset", inputs=("config", "process_index", "process_count"))


@DATASETS.register("synthetic")
def _synthetic(config, process_index: int, process_count: int):
    """The built-in phantoms, with the augmentation ``config.data`` asks for (as every dataset)."""
    from jaxseg.data import folds
    from jaxseg.data.pipeline import source_from_arrays
    from jaxseg.data.sources import synthetic

    d = config.data
    if folds.cross_validating(d):  # the num_train + num_val phantoms pooled, fold k of num_folds validates
        image, mask = synthetic.generate(d.num_train + d.num_val, d.image_size, d.task, seed=d.seed)
        train, val = folds.split_arrays(dict(image=image, mask=mask), d, config.model.get("mode") or "binary")
        return source_from_arrays(train, val, config, process_index, process_count)
    train = synthetic.generate(d.num_train, d.image_size, d.task, seed=d.seed, start=0)
    val = synthetic.generate(d.num_val, d.image_size, d.task, seed=d.seed, start=d.num_train)
    return source_from_arrays(dict(image=train[0], mask=train[1]), dict(image=val[0], mask=val[1]), config,
                              process_index, process_count)


@DATASETS.register("covid_qu_ex")
def _covid_qu_ex(config, process_index: int, process_count: int):
    from jaxseg.data.sources import covid_qu_ex

    return covid_qu_ex.load(config, process_index, process_count)


@DATASETS.register("folder")
def _folder(config, process_index: int, process_count: int):
    from jaxseg.data.sources import folder

    return folder.load(config, process_index, process_count)


@DATASETS.register("histopathology")
def _histopathology(config, process_index: int, process_count: int):
    from jaxseg.data.sources import histopathology

    return histopathology.load(config, process_index, process_count)


def available() -> list[str]:
    return DATASETS.names()


def get_source(config, process_index: int = 0, process_count: int = 1):
    factory = DATASETS.get(config.data.name)
    from jaxseg.data import streaming

    if streaming.storage(config) == "streaming":
        return streaming.load(config, process_index, process_count)
    return factory(config, process_index, process_count)
