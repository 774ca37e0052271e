"""Benchmark (not a test): Lovász hinge fwd+bwd and the exact EDT on 8×256×256, against references.

    .venv/bin/python bench/bench_losses.py [--repeats 20] [--batch 8] [--size 256]

Baselines, run in the same process on the same inputs:
* Lovász hinge: a faithful JAX port of Berman's per-image loop (argsort per image,
  ``lovasz_grad``, dot; jitted), and Berman's PyTorch code (if torch is installed —
  it is never a runtime dependency of jaxseg). Two inputs: "random" logits N(0, 1)
  (84 % of the hinge errors are positive: an untrained network) and "trained-like"
  logits 4·(2y − 1) + N(0, 1) (0.1 % positive: a network that is mostly right).
  Losses and gradients are checked against both references before timing; the
  contenders are then timed in interleaved rounds (jaxseg, port, PyTorch, jaxseg, …)
  so that a change in the machine's load hits all of them alike. PyTorch runs with
  whichever of 1 or nproc threads was faster in a short trial (with 2 threads on a
  loaded machine its OpenMP workers can be many times slower).
* EDT: ``scipy.ndimage.distance_transform_edt`` per image.
Prints median (and min) wall times and ratios, plus the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxseg.losses.lovasz import lovasz_hinge
from jaxseg.ops.edt import euclidean_distance_transform
from timing import machine, median_time  # bench/timing.py (scripts run as bench/<name>.py)


def berman_port_jax(logits, labels):
    """Berman's lovasz_hinge(per_image=True), image by image, in JAX."""
    def flat(z, y):
        signs = 2.0 * y - 1.0
        errors = 1.0 - z * signs
        perm = jnp.argsort(-errors)
        errors_sorted, gt_sorted = errors[perm], y[perm]
        gts = gt_sorted.sum()
        intersection = gts - jnp.cumsum(gt_sorted)
        union = gts + jnp.cumsum(1.0 - gt_sorted)
        jaccard = 1.0 - intersection / union
        grad = jnp.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        return jnp.dot(jax.nn.relu(errors_sorted), jax.lax.stop_gradient(grad))
    per_image = [flat(z.ravel(), y.ravel()) for z, y in zip(logits, labels)]
    return sum(per_image) / len(per_image)


def torch_reference():
    try:
        import torch
    except ImportError:
        return None

    def lovasz_grad(gt_sorted):
        gts = gt_sorted.sum()
        intersection = gts - gt_sorted.float().cumsum(0)
        union = gts + (1 - gt_sorted).float().cumsum(0)
        jaccard = 1.0 - intersection / union
        jaccard[1:] = jaccard[1:] - jaccard[0:-1]
        return jaccard

    def lovasz_hinge_flat(logits, labels):
        signs = 2.0 * labels.float() - 1.0
        errors = 1.0 - logits * signs
        errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
        grad = lovasz_grad(labels[perm])
        return torch.dot(torch.nn.functional.relu(errors_sorted), grad)

    def lovasz_hinge_torch(logits, labels):  # per_image=True, as in Berman's lovasz_losses.py
        losses = [lovasz_hinge_flat(z.reshape(-1), y.reshape(-1)) for z, y in zip(logits, labels)]
        return sum(losses) / len(losses)

    return torch, lovasz_hinge_torch


def interleaved_times(fns: dict, repeats: int) -> dict:
    """Seconds per call of each zero-argument function: a warm-up each, then ``repeats`` rounds calling them in turn."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def lovasz_inputs(shape, rng):
    """(name, logits, labels): an untrained-like and a trained-like network's output, 30 % foreground."""
    random = rng.normal(size=shape).astype(np.float32)  # drawn as before the trained-like input was added
    labels = (rng.random(shape) < 0.3).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    trained = (4.0 * (2.0 * labels - 1.0) + noise).astype(np.float32)
    return [("random", random, labels), ("trained-like", trained, labels)]


def bench_lovasz(shape, repeats, rng):
    ours = jax.jit(jax.value_and_grad(lambda z, y: lovasz_hinge(z, y, per_image=True)))
    port = jax.jit(jax.value_and_grad(berman_port_jax))
    ref = torch_reference()
    for name, logits, labels in lovasz_inputs(shape, rng):
        positive = np.mean(1.0 - logits * (2.0 * labels - 1.0) > 0)
        zd, yd = jnp.asarray(logits), jnp.asarray(labels)
        (v1, g1), (v2, g2) = ours(zd, yd), port(zd, yd)
        g1, g2 = np.asarray(g1), np.asarray(g2)
        scale = np.abs(g2).max()
        assert np.allclose(v1, v2, rtol=1e-4), (v1, v2)
        assert np.abs(g1 - g2).max() <= 1e-2 * scale, (np.abs(g1 - g2).max(), scale)
        fns = {"jaxseg": lambda: jax.block_until_ready(ours(zd, yd)),
               "port": lambda: jax.block_until_ready(port(zd, yd))}
        threads = None
        if ref is not None:
            torch, fn = ref
            zt, yt = torch.from_numpy(logits.copy()).requires_grad_(), torch.from_numpy(labels)

            def step():
                zt.grad = None
                loss = fn(zt, yt)
                loss.backward()
                return loss

            loss = float(step().detach())
            assert np.allclose(loss, float(v1), rtol=1e-4), (loss, float(v1))
            # Berman's float32 lovasz_grad differences Jaccard values near 1: its per-pixel
            # gradients carry ~1e-3 relative rounding (jaxseg's increments are formed without it)
            assert np.abs(zt.grad.numpy() - g1).max() <= 1e-2 * scale
            trial = {}
            for k in sorted({1, os.cpu_count() or 1}):
                torch.set_num_threads(k)
                trial[k] = statistics.median(interleaved_times({k: step}, 3)[k])
            threads = min(trial, key=trial.get)
            torch.set_num_threads(threads)
            fns["torch"] = step
        times = interleaved_times(fns, repeats)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        print(f"lovasz_hinge fwd+bwd, {name} logits ({positive:.1%} of hinge errors > 0), "
              f"median (min) of {repeats} interleaved rounds:")
        print(f"    jaxseg                     {med['jaxseg'] * 1e3:8.2f} ms ({low['jaxseg'] * 1e3:7.2f})")
        print(f"    Berman loop, JAX port      {med['port'] * 1e3:8.2f} ms ({low['port'] * 1e3:7.2f})  "
              f"ratio {med['port'] / med['jaxseg']:5.2f}x ({low['port'] / low['jaxseg']:5.2f}x)")
        if "torch" in med:
            print(f"    Berman PyTorch {ref[0].__version__:>11s} {med['torch'] * 1e3:8.2f} ms "
                  f"({low['torch'] * 1e3:7.2f})  ratio {med['torch'] / med['jaxseg']:5.2f}x "
                  f"({low['torch'] / low['jaxseg']:5.2f}x)  [{threads} thread{'s' if threads > 1 else ''}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    shape = (args.batch, args.size, args.size)
    rng = np.random.default_rng(0)
    print(machine())
    print(f"inputs {shape}")
    bench_lovasz(shape, args.repeats, rng)

    masks = rng.random(shape) < 0.95  # foreground with scattered background pixels
    blobs = np.zeros(shape, bool)     # one object per image: long distances outside it
    blobs[:, args.size // 3: args.size // 2, args.size // 4: args.size // 2] = True
    edt = jax.jit(euclidean_distance_transform)
    for name, m in (("random", masks), ("blob", blobs), ("blob complement", ~blobs)):
        md = jnp.asarray(m)
        ref_out = np.stack([ndimage.distance_transform_edt(x) for x in m])
        assert np.allclose(np.asarray(edt(md)), ref_out, rtol=1e-5, atol=1e-4)
        t_j = median_time(lambda: jax.block_until_ready(edt(md)), args.repeats)
        t_s = median_time(lambda: [ndimage.distance_transform_edt(x) for x in m], args.repeats)
        print(f"EDT {name:16s} jaxseg {t_j * 1e3:8.2f} ms   scipy {t_s * 1e3:8.2f} ms  ratio {t_s / t_j:5.2f}x")


if __name__ == "__main__":
    main()
