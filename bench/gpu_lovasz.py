"""Benchmark (not a test): the Lovász hinge on an accelerator, jaxseg vs Berman's PyTorch code on the same GPU.

    python3 bench/gpu_lovasz.py [--repeats 20] [--batch 8] [--sizes 256 512]

Forward + backward of ``lovasz_hinge(per_image=True)`` on random logits and labels
(30 % foreground). The baseline is ``bench_losses.torch_reference()`` (Berman's
``lovasz_losses.py`` as segmentation_models_pytorch ships it) with its tensors on
``cuda``, timed with ``torch.cuda.synchronize()`` after each call; both results
are checked equal before timing. Without a CUDA device PyTorch runs on the CPU;
``JAXSEG_BENCH_NO_TORCH=1`` skips it.
"""

from __future__ import annotations

import argparse
import os

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import jax.numpy as jnp
import numpy as np

from bench_losses import torch_reference  # bench/bench_losses.py (scripts run as bench/<name>.py)
from jaxseg.losses.lovasz import lovasz_hinge
from timing import machine, median_time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    args = ap.parse_args()
    print(machine())
    ours = jax.jit(jax.value_and_grad(lambda z, y: lovasz_hinge(z, y, per_image=True)))
    ref = None if os.environ.get("JAXSEG_BENCH_NO_TORCH") == "1" else torch_reference()
    for size in args.sizes:
        shape = (args.batch, size, size)
        rng = np.random.default_rng(0)
        logits = rng.normal(size=shape).astype(np.float32)
        labels = (rng.random(shape) < 0.3).astype(np.float32)
        zd, yd = jnp.asarray(logits), jnp.asarray(labels)
        value = float(ours(zd, yd)[0])
        t_ours = median_time(lambda: jax.block_until_ready(ours(zd, yd)), args.repeats)
        line = f"lovasz_hinge fwd+bwd {shape}: jaxseg {t_ours * 1e3:8.2f} ms"
        if ref is not None:
            torch, fn = ref
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            zt = torch.from_numpy(logits).to(dev).requires_grad_()
            yt = torch.from_numpy(labels).to(dev)

            def step():
                zt.grad = None
                loss = fn(zt, yt)
                loss.backward()
                if dev == "cuda":
                    torch.cuda.synchronize()
                return loss

            assert np.isclose(float(step().detach().cpu()), value, rtol=1e-4), "results differ"
            t_torch = median_time(step, args.repeats)
            line += (f"   Berman PyTorch {torch.__version__} on {dev} {t_torch * 1e3:8.2f} ms   "
                     f"jaxseg speed-up {t_torch / t_ours:5.2f}x")
        print(line, flush=True)


if __name__ == "__main__":
    main()
