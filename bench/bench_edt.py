"""Benchmark (not a test): exact EDT and the boundary loss's signed distance map vs scipy, and the two row passes.

    .venv/bin/python bench/bench_edt.py [--repeats 9] [--rounds 3] [--batch 8] [--sizes 256 512]

For 8×S² masks of three kinds (scattered background pixels, one rectangle, realistic
blobs), in this process on the same inputs:

1. signed distance map (``jaxseg.losses.boundary.signed_distance_map``, jitted, two
   EDTs per image) against Kervadec's ``one_hot2dist`` recipe on
   ``scipy.ndimage.distance_transform_edt`` looped per image;
2. the EDT alone (``row_pass="auto"``) against scipy per image;
3. the row passes against each other: ``row_pass="brute"`` (O(H·W²)) vs
   ``"envelope"`` (Felzenszwalb–Huttenlocher, O(HW)), whole EDT.

Each time is the median of ``--repeats`` calls after a warm-up (compilation
excluded); the baselines are timed in alternation with jaxseg in each of
``--rounds`` rounds, and every ratio printed is baseline / jaxseg from the same
round. Agreement (max |Δ|) is checked before timing.
"""

from __future__ import annotations

import argparse
import statistics

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jaxseg.losses.boundary import signed_distance_map
from jaxseg.ops.edt import euclidean_distance_transform
from timing import machine, median_time  # bench/timing.py (scripts run as bench/<name>.py)


def masks(kind, batch, size, rng):
    shape = (batch, size, size)
    if kind == "scattered":  # foreground with 5 % background pixels
        return rng.random(shape) < 0.95
    if kind == "rectangle":  # one object per image: long distances outside it
        m = np.zeros(shape, bool)
        m[:, size // 3: size // 2, size // 4: size // 2] = True
        return m
    noise = ndimage.gaussian_filter(rng.random(shape), sigma=(0, size / 24, size / 24))  # blobs, ~20 % foreground
    return noise > np.quantile(noise, 0.8, axis=(1, 2), keepdims=True)


def scipy_sdm(m):
    """Kervadec's one_hot2dist for one channel, image by image."""
    out = []
    for x in m:
        if not x.any():
            out.append(np.zeros(x.shape))
            continue
        out.append(ndimage.distance_transform_edt(~x) * ~x - (ndimage.distance_transform_edt(x) - 1) * x)
    return np.stack(out)


def scipy_edt(m):
    return np.stack([ndimage.distance_transform_edt(x) for x in m])


def bench_kind(kind, m, repeats, rounds):
    md, m4 = jnp.asarray(m), jnp.asarray(m[..., None].astype(np.float32))
    sdm = jax.jit(signed_distance_map)
    edt = {p: jax.jit(lambda x, p=p: euclidean_distance_transform(x, row_pass=p)) for p in ("auto", "brute", "envelope")}
    d_sdm = float(np.max(np.abs(np.asarray(sdm(m4))[..., 0] - scipy_sdm(m))))
    ref = scipy_edt(m)
    d_edt = max(float(np.max(np.abs(np.asarray(f(md)) - ref))) for f in edt.values())
    rows = {"sdm": [], "edt": [], "rows": []}
    for _ in range(rounds):
        t_sdm = median_time(lambda: jax.block_until_ready(sdm(m4)), repeats)
        t_sp_sdm = median_time(lambda: scipy_sdm(m), repeats)
        t_edt = median_time(lambda: jax.block_until_ready(edt["auto"](md)), repeats)
        t_sp = median_time(lambda: scipy_edt(m), repeats)
        t_brute = median_time(lambda: jax.block_until_ready(edt["brute"](md)), repeats)
        t_env = median_time(lambda: jax.block_until_ready(edt["envelope"](md)), repeats)
        rows["sdm"].append((t_sdm, t_sp_sdm))
        rows["edt"].append((t_edt, t_sp))
        rows["rows"].append((t_env, t_brute))
    return rows, d_sdm, d_edt


def report(kind, shape, rows, d_sdm, d_edt):
    def fmt(pairs):
        ratios = [b / a for a, b in pairs]
        a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        return f"{a * 1e3:8.2f} ms vs {b * 1e3:8.2f} ms  ratio {statistics.median(ratios):5.2f}x " \
               f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})"
    print(f"{kind:10s} {shape}  max|d| sdm {d_sdm:.1e}, edt {d_edt:.1e}")
    print(f"  signed distance map  jaxseg vs scipy per image : {fmt(rows['sdm'])}")
    print(f"  EDT (auto row pass)  jaxseg vs scipy per image : {fmt(rows['edt'])}")
    print(f"  EDT row pass         envelope vs brute force   : {fmt(rows['rows'])}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--kinds", nargs="+", default=["scattered", "rectangle", "blobs"])
    args = ap.parse_args()
    print(machine())
    print(f"median of {args.repeats} per round, {args.rounds} rounds; ratio = baseline / jaxseg (median over rounds)")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        for kind in args.kinds:
            m = masks(kind, args.batch, size, rng)
            report(kind, m.shape, *bench_kind(kind, m, args.repeats, args.rounds))


if __name__ == "__main__":
    main()
