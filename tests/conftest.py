"""Shared test set-up, applied before JAX starts (so subprocesses inherit it too).

* quiet TF/absl logs, CPU only; the commands' process settings (``jaxseg.runtime``),
  so in-process tests compute as the CLI does;
* XLA backend optimisation level 0: tests run tiny models, where compile time is
  everything and the generated code's speed is nothing (numerics are unchanged);
* a persistent compilation cache for the session: the resume, trial and smoke
  tests compile the same programs several times, in this process and in
  subprocesses.
Multi-device tests run in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=N (see test_parallel.py).
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="jaxseg-test-xla-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from jaxseg import runtime  # noqa: E402  (only os; JAX has not started)

runtime.configure_process()
