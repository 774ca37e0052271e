"""Benchmark (not a test): the exact modified average Hausdorff distance (MAHD), sweep vs binary search vs NumPy.

    .venv/bin/python bench/bench_mahd.py [--size 256] [--batch 8] [--repeats 5] [--rounds 2]
                                         [--kinds lungs lungs_far random] [--bisect-batch] [--no-reference]

``jaxseg.metrics.surface.modified_average_hausdorff`` (jitted, both directions, percentile 95,
on='region' unless ``--on boundary``) of one S² image and of a batch, for three kinds of
(prediction, label) pairs:

* ``lungs``: the label is two ellipses (~25 % of the image, sizes varied per image), the
  prediction the label with its boundary moved by smooth noise (±5–10 px, ~5 % of pixels differ);
* ``lungs_far``: the same plus a false-positive blob (r = 4) in a corner, ~100 px from the lungs:
  the few pixels the sweep leaves to the binary search;
* ``random``: independent Bernoulli(0.3) masks (no interior: every pixel is searched).

Compared, in this process on the same inputs: ``method="sweep"`` (the default) and
``method="bisect"`` (the previous kernel, kept as the fallback), and a brute-force NumPy
reference (float32 pairwise distances, ``np.percentile(d, 5)`` per row, 512 rows at a time) for
the single image. Each time is the median of ``--repeats`` calls after a warm-up (compilation
excluded and reported separately); the three are timed in alternation in each of ``--rounds``
rounds and every ratio is baseline / sweep from the same round (median over rounds). The bisect
kernel takes ~3 s per image on a 2-core CPU, so it is timed on the batch only with
``--bisect-batch``. Agreement (max |Δ| of the per-image MAHD) is checked first.

Runs with the commands' process settings (``jaxseg.runtime.configure_process()``: XLA:CPU's
YNNPACK kernels on; ``JAXSEG_XLA_CPU_FAST=0`` turns them off) — the settings of the trainer's
evaluation — but without the persistent compilation cache, so that first calls compile.
Wall and CPU (process) time are both printed: this machine is shared, and other processes
lengthen the wall time; XLA's worker threads count in the CPU time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAXSEG_COMPILATION_CACHE", "0")  # first calls compile (set a folder to time cache hits)
from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import numpy as np
from scipy import ndimage

from jaxseg.metrics import surface
from timing import machine  # bench/timing.py (scripts run as bench/<name>.py)


def lungs(size, rng, far=False):
    """(prediction, label) bool (S, S): two ellipses and a smoothly perturbed copy."""
    yy, xx = np.mgrid[:size, :size] / size
    cy, ry = rng.uniform(0.47, 0.53), rng.uniform(0.28, 0.34)
    lab = ((yy - cy) / ry) ** 2 + ((xx - rng.uniform(0.28, 0.32)) / rng.uniform(0.12, 0.15)) ** 2 < 1
    lab |= ((yy - cy) / (ry * 0.95)) ** 2 + ((xx - rng.uniform(0.68, 0.72)) / rng.uniform(0.12, 0.15)) ** 2 < 1
    signed = ndimage.distance_transform_edt(lab) - ndimage.distance_transform_edt(~lab)
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 40)
    pred = signed + noise * (size / 256) * 6 / noise.std() > 0
    if far:
        pred[(yy * size - 0.05 * size) ** 2 + (xx * size - 0.95 * size) ** 2 <= 16] = True
    return pred, lab


def pairs(kind, n, size, rng):
    if kind == "random":
        return rng.random((n, size, size)) < 0.3, rng.random((n, size, size)) < 0.3
    p, y = zip(*(lungs(size, rng, far=kind == "lungs_far") for _ in range(n)))
    return np.stack(p), np.stack(y)


def numpy_mahd(pred, lab, on="region"):
    """Brute force, one image: float32 pairwise distances, numpy's percentile(·, 5) per point, both directions."""
    if on == "boundary":
        pred, lab = (np.asarray(surface.boundary(m[None, ..., None]))[0, ..., 0] for m in (pred, lab))
    xs, ys = np.argwhere(pred).astype(np.float32), np.argwhere(lab).astype(np.float32)

    def directed(a, b):
        out = []
        for i in range(0, len(a), 512):
            d2 = ((a[i:i + 512, None, :] - b[None]) ** 2).sum(-1, dtype=np.float32)
            out.append(np.percentile(np.sqrt(d2), 5, axis=1))
        return np.concatenate(out).mean()

    return 0.5 * (directed(xs, ys) + directed(ys, xs))


def timed(fn, repeats):
    """(wall, CPU) seconds per call: one warm-up, then the medians of ``repeats`` calls.

    The CPU time (``time.process_time``, all threads of this process) is reported beside the wall time
    because this machine is shared: other processes lengthen the wall time, not the CPU time."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def first_call(fn, *args):
    t, c = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t, time.process_time() - c), np.asarray(out)[:, 0]


def bench(kind, size, batch, args, rng):
    on = args.on
    fns = {m: jax.jit(lambda p, y, m=m: surface.modified_average_hausdorff(p, y, on=on, method=m))
           for m in ("sweep", "bisect")}
    for label, n in (("1 image", 1), (f"batch of {batch}", batch)):
        pred, lab = pairs(kind, n, size, rng)
        p4, y4 = jax.device_put(pred[..., None]), jax.device_put(lab[..., None])
        frac = f"fg {lab.mean():.2f}/{pred.mean():.2f}, differ {np.mean(pred != lab):.3f}"
        comp_s, sweep = first_call(fns["sweep"], p4, y4)
        run_bisect = n == 1 or args.bisect_batch
        comp_b, bis = first_call(fns["bisect"], p4, y4) if run_bisect else ((float("nan"),) * 2, None)
        reference = n == 1 and not args.no_reference
        ref = np.array([numpy_mahd(pred[0], lab[0], on)]) if reference else None
        print(f"{kind:9s} {label:11s} {size}²  ({frac})  first call (compiling) wall/CPU: "
              f"sweep {comp_s[0]:.1f}/{comp_s[1]:.1f} s, bisect {comp_b[0]:.1f}/{comp_b[1]:.1f} s")
        agree = []
        if bis is not None:
            agree.append(f"max |sweep − bisect| {np.max(np.abs(sweep - bis)):.1e}")
        if ref is not None:
            agree.append(f"|sweep − numpy| {np.max(np.abs(sweep - ref)):.1e} (MAHD {sweep[0]:.5f} vs {ref[0]:.5f})")
        if agree:
            print("  agreement: " + ", ".join(agree))
        rounds = []
        for _ in range(args.rounds):
            r = {"sweep": timed(lambda: jax.block_until_ready(fns["sweep"](p4, y4)), args.repeats)}
            if run_bisect:
                r["bisect"] = timed(lambda: jax.block_until_ready(fns["bisect"](p4, y4)), max(1, args.repeats // 3))
            if reference:
                r["numpy"] = timed(lambda: numpy_mahd(pred[0], lab[0], on), 1)
            rounds.append(r)
        med = lambda name, i: statistics.median(r[name][i] for r in rounds)
        t, c = med("sweep", 0), med("sweep", 1)
        line = (f"  sweep {t * 1e3:7.1f} ms wall, {c * 1e3:7.1f} ms CPU "
                f"({t * 1e3 / n:.1f} / {c * 1e3 / n:.1f} ms per image)")
        for base in ("bisect", "numpy"):
            if base in rounds[0]:
                ratio = statistics.median(r[base][0] / r["sweep"][0] for r in rounds)
                ratio_cpu = statistics.median(r[base][1] / r["sweep"][1] for r in rounds)
                line += (f"\n  {base:6s} {med(base, 0) * 1e3:7.0f} ms wall, {med(base, 1) * 1e3:7.0f} ms CPU: "
                         f"{base}/sweep {ratio:.3g}× (CPU time {ratio_cpu:.3g}×)")
        per_round = ", ".join(f"{r['sweep'][0] * 1e3:.1f}" for r in rounds)
        print(line + f"\n  (sweep wall per round: {per_round} ms; load avg {os.getloadavg()[0]:.1f})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--kinds", nargs="+", default=["lungs", "lungs_far", "random"])
    ap.add_argument("--on", default="region", choices=("region", "boundary"))
    ap.add_argument("--bisect-batch", action="store_true", help="also time the bisect kernel on the batch (slow)")
    ap.add_argument("--no-reference", action="store_true", help="skip the NumPy brute force (~4 s per image)")
    args = ap.parse_args()
    print(machine())
    print(f"XLA:CPU YNNPACK kernels {'on' if runtime.fast_cpu_kernels_requested() else 'off'}; "
          f"median of {args.repeats} calls per round, {args.rounds} rounds; on={args.on}")
    rng = np.random.default_rng(0)
    for kind in args.kinds:
        bench(kind, args.size, args.batch, args, rng)


if __name__ == "__main__":
    main()
