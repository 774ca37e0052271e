"""Benchmark (not a test): the whole training process as a user times it, jaxseg vs a plain PyTorch script.

    .venv/bin/python bench/bench_process.py [--epochs 100] [--tiles 16] [--size 128] [--rounds 1]

The workload of issue 18's first row: ``--tiles`` nuclei-like tiles of ``--size``² written
as a folder dataset (PNG images and masks), the default U-Net (8 base channels,
depth 4), soft Dice loss (batchwise, ε = 1), Adam at 3e-3, batch 4, a seeded 20 %
validation split, ``--epochs`` epochs with validation Dice after each.

* jaxseg: ``python -m jaxseg.main --config=configs/default.py --config.data.name=folder ...``
  as a subprocess: the wall time of the whole process, and its parts from
  ``metrics.jsonl`` (train and eval seconds per epoch; the first epoch's excess over the
  median epoch is compilation), the rest being start-up (interpreter, imports,
  TensorFlow, data, model init) and per-epoch overhead (checkpoints, logs).
  Run twice: the second run finds XLA's compiled programs in the persistent
  compilation cache (``jaxseg.runtime``), as every run after a user's first one does.
* PyTorch: the same network (``bench/torch_unet.py``), loss, optimizer, batches and
  split in a plain script (PIL to read the PNGs, validation Dice after each epoch, no
  checkpoints), as a subprocess, its wall time.

Prints each part and the ratio PyTorch wall / jaxseg wall (> 1: jaxseg is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent

TORCH_SCRIPT = textwrap.dedent("""
    import json, sys, time
    t_start = time.perf_counter()
    from pathlib import Path
    import numpy as np, torch
    from PIL import Image
    sys.path.insert(0, sys.argv[1])
    from bench.torch_unet import TorchUNet
    root, epochs, train_names, val_names = Path(sys.argv[2]), int(sys.argv[3]), *json.loads(sys.argv[4])
    torch.manual_seed(0)
    def load(names):
        x = np.stack([np.asarray(Image.open(root / "images" / n), np.float32) / 255 for n in names])
        y = np.stack([np.asarray(Image.open(root / "masks" / n), np.float32) > 0 for n in names])
        return torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None].astype(np.float32))
    (xt, yt), (xv, yv) = load(train_names), load(val_names)
    model = TorchUNet(1, 1, 8, 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    def dice_loss(logits, y):
        p = torch.sigmoid(logits)
        return 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        model.train()
        perm = rng.permutation(len(xt))
        for s in range(len(xt) // 4):
            idx = perm[4 * s: 4 * s + 4]
            opt.zero_grad(set_to_none=True)
            loss = dice_loss(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = (torch.sigmoid(model(xv)) > 0.5).float()
            dice = float(2 * (pred * yv).sum() / (pred.sum() + yv.sum()))
    print(json.dumps({"dice": dice, "wall_in_script": time.perf_counter() - t_start}))
""")


def write_tiles(root: Path, tiles: int, size: int, seed: int = 0) -> None:
    """``tiles`` grayscale PNG tiles of bright blobs ('nuclei') on a textured background, and their masks."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(tiles):
        mask = np.zeros((size, size), bool)
        for _ in range(rng.integers(8, 20)):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = rng.uniform(3, 9, 2)
            mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image = 0.25 + 0.45 * ndimage.gaussian_filter(mask.astype(float), 1.5)
        image += ndimage.gaussian_filter(rng.normal(0, 0.25, (size, size)), 2) + rng.normal(0, 0.04, (size, size))
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(root / "images" / f"tile{i:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"tile{i:03d}.png")


def run_jaxseg(data: Path, workdir: Path, epochs: int, size: int, env: dict) -> dict:
    cmd = [sys.executable, "-m", "jaxseg.main", "--config=configs/default.py", f"--workdir={workdir}",
           "--config.data.name=folder", f"--config.data.root={data}", f"--config.data.image_size={size}",
           "--config.data.val_fraction=0.2", "--config.loss.name=dice", "--config.train.batch_size=4",
           f"--config.train.epochs={epochs}", "--config.train.progress=False"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    recs = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [r["time/train_s"] for r in recs]
    evals = [r["time/eval_s"] for r in recs]
    steady = statistics.median(train[1:]) if len(train) > 1 else train[0]
    compile_excess = train[0] - steady + (evals[0] - statistics.median(evals[1:]) if len(evals) > 1 else 0.0)
    return {"wall": wall, "train": sum(train), "eval": sum(evals), "compile_excess": compile_excess,
            "steps": sum(train) - (train[0] - steady), "other": wall - sum(train) - sum(evals),
            "dice": recs[-1]["val/dice"]}


def run_torch(data: Path, epochs: int) -> dict:
    names = sorted(p.name for p in (data / "images").iterdir())
    perm = np.random.default_rng(0).permutation(len(names))
    n_val = max(1, round(0.2 * len(names)))
    split = [[names[i] for i in sorted(perm[n_val:])], [names[i] for i in sorted(perm[:n_val])]]
    env = dict(os.environ, OMP_NUM_THREADS=str(os.cpu_count()))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", TORCH_SCRIPT, str(ROOT), str(data), str(epochs), json.dumps(split)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return {"wall": time.perf_counter() - t0, **json.loads(out.strip().splitlines()[-1])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--cache-dir", default=None, help="XLA's persistent cache for the jaxseg runs (default: a fresh "
                    "temporary folder, so the first run compiles and the second one finds the programs)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from timing import machine
    print(machine())
    print(f"{args.tiles} tiles of {args.size}², U-Net 8/4, Dice, Adam 3e-3, batch 4, {args.epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_tiles(tmp / "data", args.tiles, args.size)
        for r in range(args.rounds):
            env = dict(os.environ, JAXSEG_COMPILATION_CACHE=args.cache_dir or str(tmp / f"xla_cache_{r}"))
            runs = {}
            for name in ("jaxseg (cold cache)", "jaxseg (warm cache)"):
                runs[name] = run_jaxseg(tmp / "data", tmp / f"wd_{r}_{len(runs)}", args.epochs, args.size, env)
            runs["PyTorch"] = run_torch(tmp / "data", args.epochs)
            torch_wall = runs["PyTorch"]["wall"]
            for name, res in runs.items():
                parts = "" if name == "PyTorch" else (
                    f"  [train {res['train']:.1f} s of which compilation ~{res['compile_excess']:.1f} s, "
                    f"eval {res['eval']:.1f} s, start-up and per-epoch rest {res['other']:.1f} s]")
                ratio = "" if name == "PyTorch" else f"  PyTorch/jaxseg {torch_wall / res['wall']:.2f}x"
                print(f"round {r}: {name:20s} wall {res['wall']:6.1f} s  val Dice {res['dice']:.3f}{ratio}{parts}")


if __name__ == "__main__":
    main()
