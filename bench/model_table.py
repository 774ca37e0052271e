"""Parameter count and forward GFLOPs of every registered model (the README's model table).

    .venv/bin/python bench/model_table.py [--size 256] [--features 64] [--depth 5] [--json out.json]

Parameters are counted on ``jax.eval_shape(model.init)`` (nothing is run); FLOPs are XLA's
cost analysis of the compiled inference forward pass (``train=False``) for one
single-channel ``size``×``size`` image, one output class. XLA counts a multiply-add as
two FLOPs. ``cost_analysis()`` returns a dict in newer jax and a list with one dict per
computation in older ones; both are handled.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxseg import models  # noqa: E402

DESCRIPTIONS = {
    "fcn": "FCN (thesis §4.2)",
    "unet": "U-Net (§4.3.1)",
    "attunet": "Attention U-Net (§4.3.2)",
    "resunet": "Residual U-Net (§4.3.3)",
    "resattunet": "Residual Attention U-Net (§4.3.3)",
    "r2unet": "R2U-Net, t = 2 (§4.3.3)",
    "unetpp": "UNet++ (§4.3.3)",
    "transunet": "TransUNet-style, 4 layers, D = c_d (§4.4)",
    "convnext_unet": "ConvNeXt U-Net, 2 blocks/level (§7)",
}


def flops_of(cost) -> float:
    """Total 'flops' from ``Compiled.cost_analysis()`` in either of its forms."""
    if cost is None:
        return float("nan")
    if isinstance(cost, dict):
        return float(cost.get("flops", float("nan")))
    return float(sum(c.get("flops", 0.0) for c in cost if c))


def measure(name: str, size: int, features: int, depth: int) -> dict:
    model = models.get_model({"name": name, "features": features, "depth": depth, "num_classes": 1})
    x = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(x.shape), train=False))
    params = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(variables["params"]))
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
    cost = forward.lower(variables, x).compile().cost_analysis()
    return {"model": name, "params": params, "gflops": flops_of(cost) / 1e9}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = [measure(n, args.size, args.features, args.depth) for n in models.available()]
    print(f"| name | model | parameters | GFLOPs (forward, 1×{args.size}×{args.size}×1) |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| `{r['model']}` | {DESCRIPTIONS.get(r['model'], '')} | {r['params']:,} | {r['gflops']:.1f} |")
    print(f"\nfeatures={args.features}, depth={args.depth}, batch_norm=True, upsample=model default; "
          f"jax {jax.__version__}, backend {jax.default_backend()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "features": args.features, "depth": args.depth,
                       "jax": jax.__version__, "backend": jax.default_backend(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
