"""Benchmark (not a test): Lovász hinge fwd+bwd and the exact EDT on 8×256×256, against references.

    .venv/bin/python bench/bench_losses.py [--repeats 20] [--batch 8] [--size 256]

Baselines, run in the same process on the same inputs:
* Lovász hinge: a faithful JAX port of Berman's per-image loop (argsort per image,
  ``lovasz_grad``, dot; jitted), and Berman's PyTorch code (if torch is installed —
  it is never a runtime dependency of jaxseg).
* EDT: ``scipy.ndimage.distance_transform_edt`` per image.
Prints median wall times and ratios, plus the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    shape = (args.batch, args.size, args.size)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape).astype(np.float32)
    labels = (rng.random(shape) < 0.3).astype(np.float32)
    print(machine())
    print(f"inputs {shape}, median of {args.repeats}")

    ours = jax.jit(jax.value_and_grad(lambda z, y: lovasz_hinge(z, y, per_image=True)))
    port = jax.jit(jax.value_and_grad(berman_port_jax))
    zd, yd = jnp.asarray(logits), jnp.asarray(labels)
    v1, v2 = ours(zd, yd)[0], port(zd, yd)[0]
    assert np.allclose(v1, v2, rtol=1e-4), (v1, v2)
    t_ours = median_time(lambda: jax.block_until_ready(ours(zd, yd)), args.repeats)
    t_port = median_time(lambda: jax.block_until_ready(port(zd, yd)), args.repeats)
    print(f"lovasz_hinge fwd+bwd  jaxseg {t_ours * 1e3:8.2f} ms")
    print(f"                      Berman loop, JAX port {t_port * 1e3:8.2f} ms  ratio {t_port / t_ours:5.2f}x")
    ref = torch_reference()
    if ref is not None:
        torch, fn = ref
        torch.set_num_threads(os.cpu_count())
        zt, yt = torch.from_numpy(logits).requires_grad_(), torch.from_numpy(labels)

        def step():
            zt.grad = None
            loss = fn(zt, yt)
            loss.backward()
            return loss

        assert np.allclose(float(step().detach()), float(v1), rtol=1e-4)
        t_torch = median_time(step, args.repeats)
        print(f"                      Berman PyTorch {torch.__version__} {t_torch * 1e3:8.2f} ms  "
              f"ratio {t_torch / t_ours:5.2f}x")

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
