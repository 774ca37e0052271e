"""Datasets beyond memory: peak RSS and speed of training data in memory vs streamed from shards.

    .venv/bin/python bench/bench_streaming.py [--base 2000] [--scales 1,4,16] [--size 256]
        [--work /tmp/jaxseg-bench-streaming] [--train-steps 30] [--formats-records 4000] [--out results.json]

1. ``formats``: the record format, chosen by measuring. ``--formats-records`` records of a 256²
   phantom image + mask (uint8) written as ArrayRecord (group_size 1; uncompressed and zstd) and as
   TFRecord; write time, size on disk, then random reads in batches of 16 — one thread and four,
   cold (pages dropped with ``posix_fadvise(DONTNEED)``) and warm: ArrayRecordReader.read, grain's
   ArrayRecordDataSource (when grain is importable) and TFRecord by offset with ``os.preadv``
   (``jaxseg.data.shards``).
2. A folder dataset (``images/`` + ``masks/`` PNGs of ``--size``² phantoms) at ``--base`` × each of
   ``--scales`` pairs: ``--base`` phantoms drawn once, replica r of phantom i rolled by (7r, 13r)
   pixels so every file differs; the smaller sets are hard links into the largest.
3. Per scale, each measurement in its own subprocess, its peak RSS from ``os.wait4`` (the child's own
   ``ru_maxrss``): ``prepare`` (``python -m jaxseg.prepare``: the shards' build time); one epoch of
   training batches plus the validation batches in memory (``data.in_memory=True``: decode every
   pair, then ``ArraySource``) and streamed (``False``: ``StreamingSource`` over the shards), with the
   data-only images/s; and ``--train-steps`` steps of the default U-Net (8 base channels, depth 4) fed
   by each path at the scales in ``--train-scales`` — training images/s after 3 warm-up steps.

Files are written and read back at once, so PNGs and shards are mostly in the page cache (which
is not resident memory of any process): the streaming numbers are warm-cache numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- 1. record formats

def _phantom_bytes(i: int, size: int) -> bytes:
    from jaxseg.data.sources import synthetic

    img, lung, _ = synthetic.phantom(size, np.random.default_rng([0, i]))
    return np.round(img * 255).astype(np.uint8).tobytes() + lung.tobytes()


def _evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def _writers(n: int, payloads: list[bytes]):
    def array_record(options):
        def write(path):
            from array_record.python.array_record_module import ArrayRecordWriter

            w = ArrayRecordWriter(path, options)
            for i in range(n):
                w.write(payloads[i % len(payloads)])
            w.close()
        return write

    def tfrecord(path):
        import tensorflow as tf

        with tf.io.TFRecordWriter(path) as w:
            for i in range(n):
                w.write(payloads[i % len(payloads)])
    return {"arrayrecord": array_record("group_size:1,uncompressed"),
            "arrayrecord_zstd": array_record("group_size:1,zstd:3"), "tfrecord": tfrecord}


def _readers(payload: int):
    def array_record(path):
        from array_record.python.array_record_module import ArrayRecordReader

        r = ArrayRecordReader(path, "readahead_buffer_size:0")
        return lambda idx: r.read([int(i) for i in idx])

    def grain_source(path):
        import grain.python as gp

        ds = gp.ArrayRecordDataSource([path])
        return lambda idx: ds.__getitems__([int(i) for i in idx])

    def tfrecord(path):
        fd = os.open(path, os.O_RDONLY)

        def get(idx):
            out = []
            for i in idx:
                head, buf = bytearray(12), bytearray(payload)
                os.preadv(fd, [head, buf], int(i) * (payload + 16))
                out.append(buf)
            return out
        return get
    readers = [("arrayrecord", "arrayrecord", array_record), ("arrayrecord_zstd", "arrayrecord_zstd", array_record)]
    try:
        import grain.python  # noqa: F401
        readers.append(("grain ArrayRecordDataSource", "arrayrecord", grain_source))
    except ImportError:
        pass
    return readers + [("tfrecord (pread by offset)", "tfrecord", tfrecord)]


def formats(n: int, size: int, work: str) -> dict:
    """Write and random-read ``n`` records of one image + mask in each format."""
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow  # noqa: F401  (imported before the timings: 4-5 s)

    os.makedirs(work, exist_ok=True)
    payloads = [_phantom_bytes(i, size) for i in range(64)]
    payload = len(payloads[0])
    out = {"records": n, "record_bytes": payload, "write": {}, "read": {}}
    for name, write in _writers(n, payloads).items():
        path = os.path.join(work, name)
        t = time.perf_counter()
        write(path)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        out["write"][name] = {"seconds": time.perf_counter() - t, "bytes": os.path.getsize(path)}
    batches = np.random.default_rng(1).permutation(n)[: n - n % 16].reshape(-1, 16)
    for name, file, opener in _readers(payload):
        for threads in (1, 4):
            for cache in ("cold", "warm"):
                path = os.path.join(work, file)
                if cache == "cold":
                    _evict(path)
                get = opener(path)
                t = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    for got in pool.map(get, batches):
                        assert len(got) == 16 and len(got[0]) == payload
                out["read"][f"{name}, {threads} thread(s), {cache}"] = batches.size / (time.perf_counter() - t)
    shutil.rmtree(work)
    return out


# ---------------------------------------------------------------- 2. folder datasets

def make_folders(work: str, base: int, scales: list[int], size: int) -> dict[int, str]:
    """Folder datasets of base × scale pairs (the smaller ones hard links into the largest)."""
    from PIL import Image

    from jaxseg.data.sources import synthetic

    biggest = max(scales)
    roots = {s: os.path.join(work, f"folder-{s}x") for s in scales}
    top = roots[biggest]
    if not os.path.exists(os.path.join(top, "done")):
        shutil.rmtree(top, ignore_errors=True)
        for sub in ("images", "masks"):
            os.makedirs(os.path.join(top, sub))
        t = time.perf_counter()
        for i in range(base):
            img, lung, _ = synthetic.phantom(size, np.random.default_rng([0, i]))
            img, lung = np.round(img * 255).astype(np.uint8), lung * 255
            for r in range(biggest):
                name = f"{r:02d}-{i:05d}.png"
                Image.fromarray(np.roll(img, (7 * r, 13 * r), (0, 1))).save(os.path.join(top, "images", name),
                                                                            compress_level=1)
                Image.fromarray(np.roll(lung, (7 * r, 13 * r), (0, 1))).save(os.path.join(top, "masks", name),
                                                                             compress_level=1)
        open(os.path.join(top, "done"), "w").close()
        print(f"wrote {base * biggest} pairs of {size}² in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    for scale, root in roots.items():
        if scale == biggest or os.path.exists(os.path.join(root, "done")):
            continue
        shutil.rmtree(root, ignore_errors=True)
        for sub in ("images", "masks"):
            os.makedirs(os.path.join(root, sub))
            for name in sorted(os.listdir(os.path.join(top, sub)))[: base * scale]:
                os.link(os.path.join(top, sub, name), os.path.join(root, sub, name))
        open(os.path.join(root, "done"), "w").close()
    return roots


# ---------------------------------------------------------------- 3. measurements (children)

def _config(root: str, size: int, cache: str, in_memory: bool):
    sys.path.insert(0, REPO)
    from configs import default

    c = default.get_config()
    c.data.name, c.data.root, c.data.image_size, c.data.val_fraction = "folder", root, size, 0.2
    c.data.cache_dir, c.data.in_memory = cache, in_memory
    c.train.batch_size = 16
    return c


def child_epoch(args) -> dict:
    """One epoch of training batches and the validation batches; data only."""
    from jaxseg.data import get_source

    t0 = time.perf_counter()
    source = get_source(_config(args.root, args.size, args.cache, args.mode == "memory"))
    t1 = time.perf_counter()
    n = 0
    for batch in source.train_batches(0):
        n += len(batch["image"])
    t2 = time.perf_counter()
    for batch in source.eval_batches():
        pass
    t3 = time.perf_counter()
    return {"load_s": t1 - t0, "epoch_s": t2 - t1, "train_images": n, "data_images_per_s": n / (t2 - t1),
            "eval_s": t3 - t2}


def child_train(args) -> dict:
    """``--train-steps`` steps of the default U-Net fed by the source; images/s after 3 warm-up steps."""
    import jax

    from jaxseg import losses, models
    from jaxseg.data import get_source
    from jaxseg.training.optim import build_optimizer
    from jaxseg.training.steps import create_train_state, make_train_step, trial_key

    config = _config(args.root, args.size, args.cache, args.mode == "memory")
    source = get_source(config)
    model = models.get_model(config.model, "float32")
    loss_fn = models.deep_supervision_loss(losses.build_loss(config.loss, models.output_mode(config.model)))
    tx = build_optimizer(config.optimizer)
    state = create_train_state(model, tx, trial_key(config.seed, 0), source.image_shape)
    steps = min(args.train_steps, source.steps_per_epoch)
    if steps <= 3:
        raise SystemExit(f"an epoch of {source.steps_per_epoch} steps: too short to time after 3 warm-up steps")
    step = jax.jit(make_train_step(model, tx, loss_fn), donate_argnums=(0,))
    epoch = jax.numpy.asarray(0, jax.numpy.int32)
    batches = source.train_batches(0)
    wait, t0 = 0.0, None
    for i in range(steps):
        if i == 3:
            jax.block_until_ready(state)
            t0, wait = time.perf_counter(), 0.0
        tw = time.perf_counter()
        batch = jax.device_put(next(batches))
        wait += time.perf_counter() - tw
        state, out = step(state, batch, epoch)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
    images = (steps - 3) * source.batch_size
    return {"train_images_per_s": images / seconds, "data_wait_fraction": wait / seconds, "steps_timed": steps - 3}


def _vm_hwm_mb() -> float:
    """This process's own resident high-water mark (``VmHWM``), a cross-check of the parent's ``wait4``."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def _available_mb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable")) / 1024


def run_child(argv: list[str], min_available_mb: float = 1500) -> tuple[dict, float, float]:
    """(the child's JSON, its wall seconds, its peak RSS in MB), measured by ``os.wait4``.

    The child is stopped (and the result says so) if the machine's available memory falls under
    ``min_available_mb``: an in-memory run of a dataset too big for the machine is reported, not
    left to the OOM killer.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, cwd=REPO)
        killed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if killed is None and _available_mb() < min_available_mb:
                killed = f"stopped: the machine had under {min_available_mb:.0f} MB available"
                proc.kill()
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        if killed:
            return {"error": killed}, seconds, usage.ru_maxrss / 1024
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed:\n{err.read()[-3000:]}")
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), seconds, usage.ru_maxrss / 1024


def measure_scale(scale: int, root: str, args) -> dict:
    cache = os.path.join(args.work, "cache")
    py = sys.executable
    _, prep_s, prep_rss = run_child([py, "-m", "jaxseg.prepare", f"--config={REPO}/configs/default.py",
                                     "--config.data.name=folder", f"--config.data.root={root}",
                                     f"--config.data.image_size={args.size}", "--config.data.val_fraction=0.2",
                                     f"--config.data.cache_dir={cache}", "--progress=false"])
    row = {"scale": scale, "pairs": args.base * scale, "prepare_s": prep_s, "prepare_peak_rss_mb": prep_rss}
    me = [py, os.path.abspath(__file__), "--root", root, "--size", str(args.size), "--cache", cache]
    for mode in ("memory", "streaming"):
        result, wall, rss = run_child(me + ["_epoch", "--mode", mode])
        row[mode] = dict(result, wall_s=wall, peak_rss_mb=rss)
        if scale in args.train_scales:
            result, wall, rss = run_child(me + ["_train", "--mode", mode, "--train-steps", str(args.train_steps)])
            row[mode]["train"] = dict(result, wall_s=wall, peak_rss_mb=rss)
        print(json.dumps({"scale": scale, mode: row[mode]}), file=sys.stderr)
    return row


def report(results: dict) -> str:
    def rss(m):
        return f"{m['peak_rss_mb']:,.0f} MB" + (f" ({m['error']})" if "error" in m else "")

    lines = ["| pairs | prepare | epoch peak RSS in memory | streaming | data images/s in memory | streaming |",
             "|---|---|---|---|---|---|"]
    for r in results["scales"]:
        m, s = r["memory"], r["streaming"]
        rate = lambda x: f"{x['data_images_per_s']:,.0f}" if "data_images_per_s" in x else "—"  # noqa: E731
        lines.append(f"| {r['pairs']:,} | {r['prepare_s']:.0f} s ({r['prepare_peak_rss_mb']:.0f} MB) | "
                     f"{rss(m)} | {rss(s)} | {rate(m)} | {rate(s)} |")
    lines.append("")
    for r in results["scales"]:
        for mode in ("memory", "streaming"):
            t = r[mode].get("train")
            if t and "train_images_per_s" in t:
                lines.append(f"training at {r['pairs']:,} pairs, {mode}: {t['train_images_per_s']:.1f} images/s, "
                             f"data wait {100 * t['data_wait_fraction']:.1f} %, peak RSS {t['peak_rss_mb']:,.0f} MB")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", nargs="?", default="all", choices=("all", "formats", "_formats", "_epoch", "_train"))
    ap.add_argument("--base", type=int, default=2000)
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--train-scales", default="1,16")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--work", default="/tmp/jaxseg-bench-streaming")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--formats-records", type=int, default=4000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--root"), ap.add_argument("--cache"), ap.add_argument("--mode")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, REPO)
    if args.command == "_formats":
        print(json.dumps(formats(args.formats_records, args.size, os.path.join(args.work, "formats"))))
        return
    if args.command in ("_epoch", "_train"):
        from jaxseg import runtime

        runtime.configure_process()
        result = (child_epoch if args.command == "_epoch" else child_train)(args)
        print(json.dumps(dict(result, vm_hwm_mb=_vm_hwm_mb())))
        return
    # this process stays small (no TensorFlow, no JAX): Linux starts a child's ru_maxrss at its parent's
    # RSS when it execs, so a big parent would inflate every child's number
    results = {"formats": run_child([sys.executable, os.path.abspath(__file__), "_formats", "--size", str(args.size),
                                     "--formats-records", str(args.formats_records), "--work", args.work])[0]}
    print(json.dumps(results["formats"], indent=1))
    if args.command == "all":
        args.train_scales = [int(s) for s in args.train_scales.split(",") if s]
        scales = [int(s) for s in args.scales.split(",")]
        roots = make_folders(args.work, args.base, scales, args.size)
        results["scales"] = [measure_scale(s, roots[s], args) for s in scales]
        results["command"] = " ".join(sys.argv)
        print(report(results))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    print(f"children's peak RSS (largest): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
