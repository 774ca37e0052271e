"""Device mesh and shardings for data parallelism (docs/architecture.md, "Data parallelism").

One ``jax.sharding.Mesh`` over every device with a single ``data`` axis: batches
are sharded along it, parameters and optimizer state replicated, and the step is
``jax.jit``-ed — BatchNorm inside the step therefore sees the global batch. The
same code runs multi-host after ``jax.distributed.initialize()``.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxseg.errors import ConfigError

DATA_AXIS = "data"


def maybe_initialize_distributed() -> None:
    """Calls ``jax.distributed.initialize()`` when launched as one of several processes.

    Slurm (``SLURM_NTASKS`` > 1) and explicit ``JAX_COORDINATOR_ADDRESS`` launches are
    detected; a single process is left alone.
    """
    multi = int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "JAX_COORDINATOR_ADDRESS" in os.environ
    if multi and not jax.distributed.is_initialized():
        jax.distributed.initialize()


def make_mesh(devices=None) -> Mesh:
    """A 1-D ``data`` mesh over ``devices`` (default: every device of every process)."""
    return Mesh(np.asarray(jax.devices() if devices is None else devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_divisible(batch_size: int, mesh: Mesh) -> None:
    n = mesh.devices.size
    if batch_size % n:
        raise ConfigError(f"config.train.batch_size={batch_size} is not divisible by the {n} devices; "
                          f"use a multiple of {n}")


def put_batch(batch: dict, sharding: NamedSharding) -> dict:
    """Host-local numpy batch -> global jax arrays sharded along the batch axis."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in batch.items()}


def put_replicated(tree, mesh: Mesh):
    return jax.device_put(tree, replicated(mesh))
