"""What the benchmarks share: the timing rule (the median of repeated calls after a warm-up, compiling,
call) and the one-line description of the machine they ran on."""

from __future__ import annotations

import os
import platform
import statistics
import time

import jax


def median_time(fn, repeats: int) -> float:
    """Seconds per call of ``fn``: one warm-up call, then the median of ``repeats`` timed calls."""
    fn()  # warm-up / compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> str:
    """Host, cores, CPU model, load average, jax version and backend (and GPUs, if any)."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    gpu = [str(d) for d in jax.devices() if d.platform != "cpu"]
    load = os.getloadavg()[0]
    return (f"{platform.node() or 'host'}: nproc={os.cpu_count()}, CPU {cpu}, load avg {load:.1f}, "
            f"jax {jax.__version__} backend {jax.default_backend()}{' ' + ', '.join(gpu) if gpu else ''}")
