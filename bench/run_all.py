"""Runs every benchmark and appends their output, with the machine, to bench/RESULTS.md.

  .venv/bin/python bench/run_all.py            # the full set (the slide benchmark writes a 0.5 GB slide: ~10 min)
  .venv/bin/python bench/run_all.py --quick    # smaller sizes, a few minutes

Each benchmark runs in its own process (a fresh JAX, nothing shared); its stdout
goes into a dated section "Run <date> on <machine>" at the end of RESULTS.md.
The curated tables above that section are edited by hand from these runs.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["bench_unet.py", "--steps", "3", "--warmup", "1"],
    ["bench_unet.py", "--features", "16", "--depth", "4", "--size", "128", "--steps", "3"],
    ["bench_losses.py"],
    ["bench_metrics.py"],
    ["bench_input.py"],
    ["bench_augment.py", "--epochs", "6"],
    ["bench_slide.py", "--workdir", "/tmp/jaxseg_slide"],
]
QUICK = [
    ["bench_unet.py", "--features", "16", "--depth", "4", "--size", "128", "--steps", "3"],
    ["bench_losses.py", "--repeats", "3"],
    ["bench_metrics.py", "--only", "ranking", "--images", "100"],
    ["bench_augment.py", "--size", "128", "--crop", "96", "--count", "64", "--epochs", "3"],
]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    gpu = ""
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip().replace("\n", ", ")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{os.cpu_count()} CPU cores, {cpu}" + (f", GPU: {gpu}" if gpu else ", no GPU")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = p.parse_args(argv)
    runs = QUICK if args.quick else FULL
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"\n## Run {stamp} on {machine()}{' (--quick)' if args.quick else ''}\n"]
    failed = 0
    for cmd in runs:
        print(f"running {' '.join(cmd)}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], capture_output=True, text=True)
        failed += proc.returncode != 0
        out = proc.stdout.strip() or proc.stderr.strip()[-2000:]
        lines.append(f"`bench/{' '.join(cmd)}` (exit {proc.returncode}):\n\n```\n{out}\n```\n")
    with open(args.results, "a") as f:
        f.write("\n".join(lines))
    print(f"appended to {args.results}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
