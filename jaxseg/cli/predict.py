"""``python -m jaxseg.predict`` / ``jaxseg-predict``: segment image files and slides with a trained run.

  python -m jaxseg.predict --workdir=runs/x --input=scans/ --output=preds/ [--mode=tile] [--tta]
  python -m jaxseg.predict --workdir=runs/trials --input=scans/ --output=preds/     # ensemble of the trials
  python -m jaxseg.predict --workdir=runs/trials --trial=2 --input=...               # one trial
  python -m jaxseg.predict --workdir=runs/cv5 --members=0,2 --input=...             # some folds' ensemble
  python -m jaxseg.predict --workdir=runs/histo --input=slide.svs --output=preds/ --downsample=16

The library side is ``jaxseg.inference.predict`` (inputs, modes, outputs),
``jaxseg.inference.ensemble`` (trials) and ``jaxseg.inference.slides``.
Prints what it used and wrote; unreadable inputs are listed at the end (exit
code 1); the others are still written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxseg.cli import entry


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxseg.predict", description=description)
    p.add_argument("--workdir", required=True,
                   help="a training workdir (config.json + checkpoints/), a multi-trial one (trial_<t>/) "
                        "or a cross-validation root (fold_<k>/)")
    p.add_argument("--input", required=True, nargs="+", help="image files, slides and/or folders")
    p.add_argument("--output", required=True, help="folder for the predictions")
    p.add_argument("--mode", default="resize", choices=("resize", "tile"))
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap fraction (--mode=tile, slides)")
    p.add_argument("--tta", action="store_true", help="average over horizontal/vertical flips")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    p.add_argument("--threshold", type=float, default=None, help="default: the run's eval threshold")
    p.add_argument("--trial", type=int, default=None,
                   help="multi-trial workdir: use trial N only (default: the mean of all trials' probabilities)")
    p.add_argument("--members", default=None,
                   help="trials (multi-trial workdir) or folds (cross-validation root) to ensemble, e.g. 0,2 "
                        "(default: all)")
    p.add_argument("--downsample", type=int, default=1,
                   help="slides: write labels at 1/D of level 0 (default 1: level-0 resolution)")
    p.add_argument("--prob-format", default="auto", choices=("auto", "npy"),
                   help="auto: 16-bit PNG (binary) or float16 .npy (multi-class); npy: float32 .npy always")
    return p


def main(argv=None) -> int:
    from jaxseg.inference import predict

    args = _parser(predict.__doc__.split("\n\n")[0]).parse_args(argv)
    entry.quiet_absl()
    result = predict.predict_files(args.workdir, args.input, args.output, mode=args.mode, overlap=args.overlap,
                                   tta=args.tta, batch_size=args.batch_size, checkpoint=args.checkpoint,
                                   threshold=args.threshold, trial=args.trial, downsample=args.downsample,
                                   prob_format=args.prob_format, members=args.members)
    print(f"model: {result.model}")
    images = [w for w in result.written if w.slide is None]
    if images:
        print(f"predicted {len(images)} image(s) into {args.output}: NAME_prob, NAME_mask.png, NAME_overlay.png")
    for w in result.written:
        if w.name == Path(w.input).stem:
            continue
        print(f"  {w.input} -> {w.name}_* (another input has the same name)")
    for w in result.written:
        if w.slide is not None:
            s = w.slide
            print(f"slide {w.input} ({s['level0_size'][0]}x{s['level0_size'][1]} at level 0) -> {w.outputs[0]}: "
                  f"labels at downsample {s['downsample']} ({s['size'][0]}x{s['size'][1]}), "
                  f"{s['tissue_blocks']} of {s['blocks']} blocks with tissue, {s['positive_pixels']} positive pixels")
    for path, err in result.failures:
        print(f"failed: {err}", file=sys.stderr)
    return 1 if result.failures else 0


def run(argv=None):
    entry.run(main, argv)


if __name__ == "__main__":
    run()
