"""Training throughput of the thesis U-Net: jaxseg (JAX/XLA) vs the same model in PyTorch, same process.

  .venv/bin/python bench/bench_unet.py [--features 64 --depth 5 --size 256 --batch 8 --steps 5]

Both sides: one train step = forward, BCE-with-logits loss, backward, Adam update,
float32, NHWC in JAX / NCHW (or channels_last with --channels-last) in PyTorch,
``torch.set_num_threads(os.cpu_count())``. Parameter counts are checked equal.
Prints images/s of each and the ratio jaxseg/PyTorch; ``--json`` for the record.
On a GPU machine the JAX side runs on the GPU and ``--dtype bfloat16`` uses bf16
activations (float32 master weights); PyTorch then uses CUDA with AMP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_jax(args, images, masks):
    import jax
    import jax.numpy as jnp

    from jaxseg import losses, models
    from jaxseg import training as train
    from jaxseg.training.optim import build_optimizer

    model = models.get_model(dict(name="unet", features=args.features, depth=args.depth), args.dtype)
    tx = build_optimizer(dict(name="adam", learning_rate=1e-4))
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), images.shape[1:])
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
    step = jax.jit(train.make_train_step(model, tx, losses.build_loss(dict(name="bce"))), donate_argnums=(0,))
    batch = {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}
    k = jnp.int32(0)
    lowered = step.lower(state, batch, k)
    # FLOPs of the step as written (XLA's analysis of the module before backend passes): the compiled
    # module's count misses the convolutions a GPU backend hands to cuDNN (97 instead of ~3,070 GFLOP).
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    for _ in range(args.warmup):
        state, out = step(state, batch, k)
    jax.block_until_ready(out["loss"])
    t0 = time.perf_counter()
    for _ in range(args.steps):
        state, out = step(state, batch, k)
    jax.block_until_ready(out["loss"])
    dt = (time.perf_counter() - t0) / args.steps
    return {"images_per_s": args.batch / dt, "step_s": dt, "params": int(n_params), "flops_per_step": flops,
            "device": str(jax.devices()[0].device_kind), "loss": float(out["loss"])}


def bench_torch(args, images, masks):
    import torch

    from bench.torch_unet import TorchUNet

    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(os.cpu_count())
    model = TorchUNet(images.shape[-1], 1, args.features, args.depth).to(dev)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(dev).contiguous(memory_format=fmt)
    y = torch.from_numpy(masks.transpose(0, 3, 1, 2).copy()).to(dev)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    amp = cuda and args.dtype == "bfloat16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    model.train()
    for _ in range(args.warmup):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    if cuda:
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / args.steps
    return {"images_per_s": args.batch / dt, "step_s": dt, "params": int(n_params), "loss": float(loss.detach()),
            "version": torch.__version__}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak (e.g. 989 for H100 bf16 dense): prints MFU = FLOP/step ÷ step time ÷ peak")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line instead of text")
    p.add_argument("--json-out", default=None, help="also write the result as JSON to this file")
    args = p.parse_args(argv)

    from jaxseg.data.sources import synthetic

    images, masks = synthetic.generate(args.batch, args.size, "lung", seed=0)
    result = {"machine": f"{os.cpu_count()} CPU cores, {cpu_name()}", "config": vars(args)}
    result["jaxseg"] = bench_jax(args, images, masks)
    if not args.no_torch:
        result["torch"] = bench_torch(args, images, masks)
        assert result["torch"]["params"] == result["jaxseg"]["params"], (result["torch"]["params"],
                                                                          result["jaxseg"]["params"])
        result["ratio_jax_over_torch"] = result["jaxseg"]["images_per_s"] / result["torch"]["images_per_s"]
    if args.peak_tflops:
        result["jaxseg"]["mfu"] = result["jaxseg"]["flops_per_step"] / result["jaxseg"]["step_s"] / (args.peak_tflops * 1e12)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        j = result["jaxseg"]
        print(f"{result['machine']}; U-Net {args.features}/{args.depth} at {args.size}², batch {args.batch}, "
              f"{args.dtype}, {j['params']:,} params, {j['flops_per_step'] / 1e9:.1f} GFLOP/step")
        mfu = f", MFU {100 * j['mfu']:.1f}%" if "mfu" in j else ""
        print(f"  jaxseg : {j['images_per_s']:8.2f} images/s ({j['step_s'] * 1e3:.0f} ms/step{mfu}) on {j['device']}")
        if "torch" in result:
            t = result["torch"]
            print(f"  PyTorch: {t['images_per_s']:8.2f} images/s ({t['step_s'] * 1e3:.0f} ms/step)")
            print(f"  ratio jaxseg/PyTorch: {result['ratio_jax_over_torch']:.2f}")
    return result


if __name__ == "__main__":
    main()
