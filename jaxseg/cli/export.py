"""``python -m jaxseg.export`` / ``jaxseg-export``: a trained run as an ONNX file or a TensorFlow SavedModel.

  python -m jaxseg.export --workdir=runs/x --format=onnx --output=runs/x/model.onnx
  python -m jaxseg.export --workdir=runs/x --format=savedmodel --output=runs/x/savedmodel --batch=8
  python -m jaxseg.export --workdir=runs/trials --format=onnx --output=ens.onnx     # mean of all trials
  python -m jaxseg.export --workdir=runs/trials --members=0,2 --format=onnx ...     # of trials 0 and 2
  python -m jaxseg.export --workdir=runs/trials --trial=1 --format=onnx ...         # trial 1 alone

The library side is ``jaxseg.exporting`` (what the graph computes and expects,
the check of every export against ``jaxseg.predict``). Prints the input and
output the export takes and gives, and the check's largest difference.
"""

from __future__ import annotations

import argparse

from jaxseg.cli import entry


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxseg.export", description=description)
    p.add_argument("--workdir", required=True,
                   help="a training workdir (config.json + checkpoints/) or a multi-trial one (trial_<t>/)")
    p.add_argument("--format", required=True, help="onnx (a .onnx file) or savedmodel (a folder)")
    p.add_argument("--output", required=True, help="the .onnx file or the SavedModel folder to write")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size N")
    p.add_argument("--trial", type=int, default=None,
                   help="multi-trial workdir: export trial N only (default: the mean of all trials' probabilities)")
    p.add_argument("--members", default=None,
                   help="multi-trial workdir: the trials to average, e.g. 0,2 (default: all)")
    p.add_argument("--checkpoint", default="best", choices=("best", "latest"))
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17: onnxruntime >= 1.11)")
    return p


def main(argv=None) -> int:
    from jaxseg import exporting

    args = _parser(exporting.__doc__.split("\n\n")[0]).parse_args(argv)
    entry.quiet_absl()
    result = exporting.export(args.workdir, args.format, args.output, batch=args.batch, trial=args.trial,
                              members=args.members, checkpoint=args.checkpoint, opset=args.opset)
    shape = lambda s: "(" + ", ".join("N" if d is None else str(d) for d in s) + ")"  # noqa: E731
    print(f"model: {result.model}")
    print(f"wrote {result.path} ({result.format})")
    print(f"  input  images         float32 {shape(result.input_shape)} in [0, 1] (8-bit values / 255)")
    rule = "softmax" if result.mode == "multiclass" else "sigmoid"
    mean = f", mean of {len(result.members)} trials" if len(result.members) > 1 else ""
    print(f"  output probabilities  float32 {shape(result.output_shape)} ({result.mode}: {rule}{mean}; "
          + ("mask = argmax)" if result.mode == "multiclass" else f"mask = probability > {result.threshold:g})"))
    print(f"checked: max |export - jaxseg.predict| = {result.max_abs_diff:.1e} on {result.check_images} random images")
    return 0


def run(argv=None):
    entry.run(main, argv)  # TensorFlow only when a SavedModel is written (exporting.writers)


if __name__ == "__main__":
    run()
