"""Benchmark: streamed ROC AUC + AP and Hausdorff metrics against scikit-learn / scipy.

  .venv/bin/python bench/bench_metrics.py [--images 600] [--masks 64] [--size 256]

1. ROC AUC + AP over images×size×size pixels (sigmoid scores of a model-like
   logit distribution, float32): jaxseg's collection (a jit-ed per-batch
   histogram update over batches of 8 on device, one host reduction) against
   ``sklearn.metrics.roc_auc_score`` + ``average_precision_score`` on the same
   float32 arrays. Reports both times, the ratio, |difference| and jaxseg's
   certified quantisation bound.
2. HD95 + average Hausdorff over ``masks`` blob masks: jaxseg (one jit-ed call,
   batched exact EDT) against a per-image scipy computation
   (``distance_transform_edt`` + ``np.percentile``, MONAI's recipe).

Times are the best of ``--repeats`` after one warm-up (compilation excluded
and reported separately), in this process on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

from jaxseg import runtime  # noqa: E402  (the commands' process settings, before JAX starts)
runtime.configure_process()

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from jaxseg import metrics
from jaxseg.metrics import ranking, surface


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except Exception:  # noqa: BLE001 - informational only
        return platform.processor()


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_ranking(images: int, size: int, batch: int, repeats: int):
    rng = np.random.default_rng(0)
    y = rng.random((images, size, size, 1), dtype=np.float32) < 0.15
    logits = np.where(y, rng.normal(2.0, 2.5, y.shape), rng.normal(-2.5, 2.5, y.shape)).astype(np.float32)
    scores = np.asarray(jax.nn.sigmoid(logits))
    labels = y.astype(np.float32)
    del logits
    col = metrics.MetricCollection(["roc_auc", "average_precision"], num_classes=1)
    update = jax.jit(col.update, donate_argnums=0)
    pad = -images % batch  # the last batch is padded, as in the trainer
    padded = [np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) for a in (scores, labels)]
    dev_s = [jax.device_put(padded[0][i:i + batch]) for i in range(0, images + pad, batch)]
    dev_y = [jax.device_put(padded[1][i:i + batch]) for i in range(0, images + pad, batch)]
    valid = [jnp.arange(i, i + batch) < images for i in range(0, images + pad, batch)]
    t = time.perf_counter()
    jax.block_until_ready(update(col.init(), dev_s[0], dev_y[0], valid[0]))
    compile_s = time.perf_counter() - t

    def ours():
        acc = col.init()
        for s, l, v in zip(dev_s, dev_y, valid):
            acc = update(acc, s, l, v)
        return col.compute(acc), acc

    t_ours, (res, acc) = _best(ours, repeats)

    def sk():
        flat_y, flat_s = y.ravel(), scores.ravel()
        return roc_auc_score(flat_y, flat_s), average_precision_score(flat_y, flat_s)

    t_sk, (auc, ap) = _best(sk, 1)
    b_auc, b_ap = ranking.error_bounds(np.asarray(acc["roc_auc"]))
    return {"pixels": scores.size, "jaxseg_s": t_ours, "compile_s": compile_s, "sklearn_s": t_sk,
            "speedup": t_sk / t_ours, "auc_diff": abs(res["roc_auc"] - auc),
            "ap_diff": abs(res["average_precision"] - ap), "auc_bound": float(b_auc[0]),
            "ap_bound": float(b_ap[0]), "auc": auc, "ap": ap}


def _blobs(rng, n, size):
    noise = ndimage.gaussian_filter(rng.random((n, size, size)), sigma=(0, size / 24, size / 24))
    lab = noise > np.quantile(noise, 0.8, axis=(1, 2), keepdims=True)
    jitter = ndimage.gaussian_filter(rng.random((n, size, size)), sigma=(0, 2, 2))
    pred = ndimage.binary_dilation(lab, iterations=2) & (jitter > 0.49)
    pred |= rng.random((n, size, size)) < 2e-4  # a few stray false positives
    return pred, lab


def _scipy_hd95_ahd(pred, lab):
    hd95, ahd = [], []
    for p, y in zip(pred, lab):
        d_xy = ndimage.distance_transform_edt(~y)[p]
        d_yx = ndimage.distance_transform_edt(~p)[y]
        hd95.append(max(np.percentile(d_xy, 95), np.percentile(d_yx, 95)))
        ahd.append(0.5 * (d_xy.mean() + d_yx.mean()))
    return np.array(hd95), np.array(ahd)


def bench_distance(masks: int, size: int, repeats: int):
    pred, lab = _blobs(np.random.default_rng(1), masks, size)
    fn = jax.jit(lambda p, y: (surface.hausdorff95(p, y), surface.average_hausdorff(p, y)))
    dp, dl = jax.device_put(pred[..., None]), jax.device_put(lab[..., None])  # NHWC, C = 1
    t = time.perf_counter()
    jax.block_until_ready(fn(dp, dl))
    compile_s = time.perf_counter() - t
    t_ours, out = _best(lambda: jax.block_until_ready(fn(dp, dl)), repeats)
    t_sp, (hd95, ahd) = _best(lambda: _scipy_hd95_ahd(pred, lab), repeats)
    return {"masks": masks, "jaxseg_s": t_ours, "compile_s": compile_s, "scipy_s": t_sp,
            "speedup": t_sp / t_ours,
            "hd95_maxdiff": float(np.max(np.abs(np.asarray(out[0])[:, 0] - hd95))),
            "ahd_maxdiff": float(np.max(np.abs(np.asarray(out[1])[:, 0] - ahd)))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--masks", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["ranking", "distance"])
    args = ap.parse_args()
    print(f"machine: nproc={os.cpu_count()} cpu={_cpu_model()!r} jax={jax.__version__} "
          f"backend={jax.default_backend()} devices={jax.devices()}")
    if args.only != "distance":
        r = bench_ranking(args.images, args.size, args.batch, args.repeats)
        print(f"AUC+AP {r['pixels']:,} px: jaxseg {r['jaxseg_s']:.2f}s (compile {r['compile_s']:.2f}s), "
              f"sklearn {r['sklearn_s']:.2f}s, speed-up x{r['speedup']:.1f}; "
              f"|dAUC|={r['auc_diff']:.2e} (bound {r['auc_bound']:.2e}), "
              f"|dAP|={r['ap_diff']:.2e} (bound {r['ap_bound']:.2e}); AUC={r['auc']:.6f} AP={r['ap']:.6f}")
    if args.only != "ranking":
        d = bench_distance(args.masks, args.size, args.repeats)
        print(f"HD95+AHD {d['masks']} masks {args.size}^2: jaxseg {d['jaxseg_s']:.2f}s "
              f"(compile {d['compile_s']:.2f}s), scipy {d['scipy_s']:.2f}s, speed-up x{d['speedup']:.2f}; "
              f"max|dHD95|={d['hd95_maxdiff']:.2e} max|dAHD|={d['ahd_maxdiff']:.2e}")


if __name__ == "__main__":
    main()
