"""Process-wide settings, made by the command-line tools — never at import: ``configure_process()``.

Importing jaxseg changes nothing global. The commands in ``jaxseg.cli`` call
``configure_process()`` before JAX or TensorFlow start; a library user who wants
the same settings calls it first thing in their script:

    import jaxseg.runtime
    jaxseg.runtime.configure_process(tensorflow=True)  # before the first JAX computation

It (1) turns on XLA:CPU's YNNPACK kernels (below), (2) keeps XLA's compiled
programs in a persistent cache (below), (3) quiets TensorFlow's C++ log, and (4)
with ``tensorflow=True``, hides accelerators from TensorFlow, which jaxseg uses for
input pipelines only, so it never takes GPU memory JAX needs.

The persistent compilation cache
--------------------------------

Compiling the train and eval steps is a fixed cost of every run (seconds on a CPU
for the default U-Net, tens of seconds for the thesis's). JAX can keep compiled
programs on disk, keyed by the program, the compiler flags and the device; a later
run of the same model, shapes and settings loads them instead of compiling.
``enable_compilation_cache()`` points JAX there: ``JAXSEG_COMPILATION_CACHE``
names the folder (default ``$XDG_CACHE_HOME/jaxseg/xla``, else ``~/.cache/jaxseg/xla``),
``JAXSEG_COMPILATION_CACHE=0`` turns it off, and a ``JAX_COMPILATION_CACHE_DIR`` the
user set wins. Programs that compile in under half a second are not stored.

XLA:CPU's YNNPACK kernels for dots, element-wise ops and reductions
-------------------------------------------------------------------

XLA:CPU (jaxlib 0.10 and 0.11) computes a convolution's weight gradient through a generic
contraction that runs at ~10 GFLOP/s on a 2-core Xeon: 244–330 ms for one 64→64
3×3 layer at 4×128², where PyTorch's oneDNN kernel takes 27 ms. With

    --xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce

XLA hands those ops to YNNPACK (XNNPACK's successor): the same weight gradient
takes 73–87 ms and a U-Net train step runs 1.6× (32/5 at 128²) to 2.7× (64/5 at
256²) faster (bench/RESULTS.md, "U-Net training throughput"). Gradients agree with
the default path's to float32 rounding (tests/test_xla_cpu.py).

The flag must be in ``XLA_FLAGS`` before JAX creates its CPU client, and an
unknown flag aborts the process — so it is added only for jaxlib versions known
to have it (``KNOWN_JAXLIB``), only if the user has not set a YNN fusion type
themselves, and never when ``JAXSEG_XLA_CPU_FAST=0``. ``configure_process()`` calls
``enable_fast_cpu_kernels()``; it is a no-op once a JAX backend exists.
GPU and TPU runs are unaffected (the flag concerns the CPU client only).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["FLAG", "KNOWN_JAXLIB", "configure_process", "enable_compilation_cache", "enable_fast_cpu_kernels",
           "fast_cpu_kernels_requested", "hide_accelerators_from_tensorflow"]

FLAG = "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce"
KNOWN_JAXLIB = ((0, 10), (0, 11))  # releases whose XLA defines the flag (checked: 0.10.0, 0.10.2, 0.11.2)
_OFF = {"0", "false", "no", "off"}


def _jaxlib_release() -> tuple[int, int] | None:
    try:
        from jaxlib import version
    except ImportError:
        return None
    parts = version.__version__.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def fast_cpu_kernels_requested(environ=None) -> bool:
    """True if XLA_FLAGS (in ``environ``, default ``os.environ``) holds our flag."""
    env = os.environ if environ is None else environ
    return FLAG in env.get("XLA_FLAGS", "").split()


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


def enable_fast_cpu_kernels(environ=None, backend_started: bool | None = None) -> bool:
    """Add ``FLAG`` to ``XLA_FLAGS`` when it is safe and wanted; return whether it is now there.

    Leaves ``XLA_FLAGS`` alone if ``JAXSEG_XLA_CPU_FAST`` is 0/false/no/off, if
    it already names a YNN fusion type, if the jaxlib release is not one in
    ``KNOWN_JAXLIB``, or if a JAX backend is already initialised (the flag would
    have no effect).
    """
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if env.get("JAXSEG_XLA_CPU_FAST", "1").strip().lower() in _OFF:
        return False
    if "ynn_fusion_type" in flags:
        return fast_cpu_kernels_requested(env)
    if _jaxlib_release() not in KNOWN_JAXLIB:
        return False
    if _backend_started() if backend_started is None else backend_started:
        return False
    env["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
    return True


def enable_compilation_cache(environ=None) -> str | None:
    """Point JAX's persistent compilation cache at jaxseg's folder (module docstring); return the folder or None.

    Sets ``JAX_COMPILATION_CACHE_DIR`` (and a 0.5 s minimum compile time) in ``environ`` for JAX to read
    when it is imported, and updates ``jax.config`` too when JAX is imported already.
    """
    env = os.environ if environ is None else environ
    choice = env.get("JAXSEG_COMPILATION_CACHE", "").strip()
    if choice.lower() in _OFF:
        return None
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return env["JAX_COMPILATION_CACHE_DIR"]
    base = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME") or Path.home()) / ".cache")
    folder = str(Path(choice).expanduser() if choice else base / "jaxseg" / "xla")
    env["JAX_COMPILATION_CACHE_DIR"] = folder
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    if environ is None and "jax" in sys.modules:  # imported already: its config read the environment before
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return folder


def hide_accelerators_from_tensorflow() -> None:
    """TensorFlow sees no GPU (``jaxseg.data.tf_devices``: TensorFlow is imported in the data layer only)."""
    from jaxseg.data.tf_devices import hide_accelerators_from_tensorflow as hide

    hide()


def configure_process(tensorflow: bool = False, environ=None) -> None:
    """The process-wide settings of the jaxseg commands (module docstring); call before JAX starts."""
    env = os.environ if environ is None else environ
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    enable_fast_cpu_kernels(env)
    enable_compilation_cache(env if environ is not None else None)
    if tensorflow:
        hide_accelerators_from_tensorflow()
