"""Device mesh, shardings and the multi-process runtime (docs/architecture.md, "Data parallelism").

One ``jax.sharding.Mesh`` over every device of every process with a single ``data``
axis: batches are sharded along it, parameters and optimizer state replicated, and
the step is ``jax.jit``-ed — BatchNorm inside the step therefore sees the global
batch, whether its shards live on one process or on several.

Several processes (JAX's multi-controller runtime): every process runs the same
program on its own devices after ``jax.distributed.initialize``. Each reads only its
own rows of every global batch (``jaxseg.data.pipeline.ArraySource``) and
``put_batch`` assembles them into one global array; results of the jitted steps are
global arrays too (a replicated scalar reads the same on every process).
``maybe_initialize_distributed`` starts the runtime when the environment asks for it:

* ``launch/local_multiprocess.sh N`` (several processes on one machine, coordinator on
  localhost) sets ``JAX_COORDINATOR_ADDRESS``, ``JAXSEG_NUM_PROCESSES`` and
  ``JAXSEG_PROCESS_ID``;
* under Slurm (``SLURM_NTASKS`` > 1) ``jax.distributed.initialize()`` reads everything
  from Slurm's variables (``launch/slurm.sbatch``).

On CPU the processes' collectives go through gloo (``jax_cpu_collectives_implementation``).
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxseg.errors import ConfigError

DATA_AXIS = "data"
ENV_NUM_PROCESSES, ENV_PROCESS_ID = "JAXSEG_NUM_PROCESSES", "JAXSEG_PROCESS_ID"


def distributed_settings(environ=None) -> dict | None:
    """The ``jax.distributed.initialize`` arguments the environment asks for, or None for one process.

    ``{}`` under Slurm (JAX detects the rest); coordinator, process count and id when
    ``JAXSEG_NUM_PROCESSES`` > 1 (``launch/local_multiprocess.sh``).
    """
    env = os.environ if environ is None else environ
    n = int(env.get(ENV_NUM_PROCESSES, "1") or 1)
    if n > 1:
        missing = [k for k in ("JAX_COORDINATOR_ADDRESS", ENV_PROCESS_ID) if not env.get(k)]
        if missing:
            raise ConfigError(f"{ENV_NUM_PROCESSES}={n} but {' and '.join(missing)} not set; start the "
                              "processes with launch/local_multiprocess.sh")
        return {"coordinator_address": env["JAX_COORDINATOR_ADDRESS"], "num_processes": n,
                "process_id": int(env[ENV_PROCESS_ID])}
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return {}
    return None


def maybe_initialize_distributed() -> None:
    """Starts JAX's multi-process runtime when launched as one of several processes (else nothing).

    Must run before the first JAX computation of the process (``set_up`` calls it first).
    """
    settings = distributed_settings()
    if settings is None or jax.distributed.is_initialized():
        return
    if jax.config.jax_cpu_collectives_implementation is None:  # CPU processes talk through gloo
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # jaxseg agrees on preemption itself (guards.py); JAX's service would take SIGTERM from Python
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(**settings)


def is_main_process() -> bool:
    """Process 0 writes the logs, reports and prints; every process takes part in checkpoints."""
    return jax.process_index() == 0


def make_mesh(devices=None) -> Mesh:
    """A 1-D ``data`` mesh over ``devices`` (default: every device of every process, process by process)."""
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
    """This process's rows of a global batch (numpy) -> global jax arrays sharded along the batch axis.

    With P processes each passes its ``batch_size / P`` rows — process p the p-th block
    of the global batch, as the mesh orders devices process by process.
    """
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in batch.items()}


def put_replicated(tree, mesh: Mesh):
    return jax.device_put(tree, replicated(mesh))


@functools.lru_cache(maxsize=8)
def process_flags(flag: bool, mesh: Mesh) -> jax.Array:
    """A global bool array, one entry per device, holding each process's ``flag`` on its devices.

    Passed into a jitted step, ``jnp.any`` of it is the OR over processes — the same
    value on every process (how a SIGTERM received by one process stops them all). Made once per
    (flag, mesh): the train loop passes one every step.
    """
    local = np.full((len(mesh.local_devices),), bool(flag))
    return jax.make_array_from_process_local_data(batch_sharding(mesh), local)


@jax.jit
def _any(flags):
    return jnp.any(flags)


def any_process(flag: bool, mesh: Mesh) -> bool:
    """True on every process when ``flag`` is true on any; a collective all processes must call."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(_any(process_flags(flag, mesh)))


def to_host(tree):
    """Numpy copies of a tree of (global) arrays, the same on every process.

    A replicated array is read from this process's copy; one sharded over other processes'
    devices is gathered first (a collective: every process calls ``to_host`` at the same point).
    """
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(get, tree)
