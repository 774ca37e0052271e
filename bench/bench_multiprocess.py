"""Training in 2 processes × 1 CPU device (JAX's multi-controller runtime, ``launch/local_multiprocess.sh``)
vs 1 process × 2 CPU devices: the same config, global batch and seed, on this machine.

    .venv/bin/python bench/bench_multiprocess.py [--epochs 3] [--repeats 1] [--config configs/default.py] \
        [--config.x.y=v ...]

Each arm runs the trainer command as a user would (imports, data, compilation, every epoch,
evaluation, checkpoints) into a fresh workdir. Printed per arm: the command's wall time, the
median of ``time/train_s`` over the epochs after the first (steady-state training, no compilation),
and the ratio 2 processes / 1 process; then whether the two runs' metrics are identical.
The machine line is ``bench.timing.machine()``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from timing import machine  # bench/timing.py (scripts run as bench/<name>.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _records(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def run_arm(kind: str, args: list[str], workdir: str) -> dict:
    env = dict(os.environ, PY=sys.executable, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("JAX_PLATFORMS", "cpu")
    if kind == "1 process x 2 devices":
        cmd = [sys.executable, "-m", "jaxseg.main", *args, f"--workdir={workdir}"]
        env["JAX_NUM_CPU_DEVICES"] = "2"
    else:
        cmd = ["bash", os.path.join(ROOT, "launch", "local_multiprocess.sh"), "2", *args, f"--workdir={workdir}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    recs = _records(workdir)
    steady = [r["time/train_s"] for r in recs[1:]] or [recs[0]["time/train_s"]]
    return {"wall_s": wall, "train_s": statistics.median(steady), "first_epoch_s": recs[0]["time/train_s"],
            "records": [{k: v for k, v in r.items() if not k.startswith("time/")} for r in recs]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.py")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1, help="runs of each arm, alternating; medians reported "
                    "(each run listed too)")
    a, overrides = ap.parse_known_args()  # the rest: --config.x.y=v flags for the trainer
    args = [f"--config={a.config}", f"--config.train.epochs={a.epochs}", "--config.train.progress=False",
            *overrides]
    print(machine())
    print("trainer flags:", " ".join(args))
    arms = ("1 process x 2 devices", "2 processes x 1 device")
    results = {k: [] for k in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for kind in arms:
                results[kind].append(run_arm(kind, args, os.path.join(tmp, f"{r}-{kind.split()[0]}")))
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("wall_s", "train_s", "first_epoch_s")}
           for k, v in results.items()}
    for kind in arms:
        m = med[kind]
        print(f"{kind:24s} wall {m['wall_s']:7.1f} s   steady epoch {m['train_s']:6.2f} s   "
              f"first epoch (compiles) {m['first_epoch_s']:6.2f} s")
        if a.repeats > 1:
            print(f"{'':24s} each run: wall " + ", ".join(f"{x['wall_s']:.1f}" for x in results[kind]) +
                  " s; steady epoch " + ", ".join(f"{x['train_s']:.2f}" for x in results[kind]) + " s")
    one, two = med[arms[0]], med[arms[1]]
    print(f"ratio 2 processes / 1 process: wall {two['wall_s'] / one['wall_s']:.2f}x, "
          f"steady epoch {two['train_s'] / one['train_s']:.2f}x")
    same = all(x["records"] == results[arms[0]][0]["records"] for v in results.values() for x in v)
    print("metrics identical in every run:", same)


if __name__ == "__main__":
    main()
