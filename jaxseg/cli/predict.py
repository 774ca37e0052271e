"""``python -m jaxseg.predict`` / ``jaxseg-predict``: segment image files with a trained run.

  python -m jaxseg.predict --workdir=runs/x --input=scans/ --output=preds/ [--mode=tile] [--tta]

The library side is ``jaxseg.inference.predict`` (inputs, modes, outputs).
Unreadable inputs are listed at the end (exit code 1); the others are still written.
"""

from __future__ import annotations

import argparse
import sys

from jaxseg.cli import entry


def main(argv=None) -> int:
    from jaxseg.inference import predict

    p = argparse.ArgumentParser(prog="python -m jaxseg.predict", description=predict.__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="a training workdir (config.json + checkpoints/)")
    p.add_argument("--input", required=True, nargs="+", help="image files and/or folders")
    p.add_argument("--output", required=True, help="folder for the predictions")
    p.add_argument("--mode", default="resize", choices=("resize", "tile"))
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (--mode=tile)")
    p.add_argument("--tta", action="store_true", help="average over horizontal/vertical flips")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    p.add_argument("--threshold", type=float, default=None, help="default: the run's eval threshold")
    args = p.parse_args(argv)
    entry.quiet_absl()
    failures = predict.run(args.workdir, args.input, args.output, args.mode, args.overlap, args.tta,
                           args.batch_size, args.checkpoint, args.threshold)
    for path, err in failures:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if failures else 0


def run(argv=None):
    entry.run(main, argv)


if __name__ == "__main__":
    run()
