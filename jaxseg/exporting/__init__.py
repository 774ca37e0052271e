"""Export of a trained run (or the ensemble of its trials) for deployment: ONNX or a TensorFlow SavedModel.

  python -m jaxseg.export --workdir=runs/x --format=onnx --output=model.onnx [--batch=dynamic|N]
                          [--trial=T | --members=0,2] [--checkpoint=best|latest] [--opset=17]

What the exported graph computes is what ``jaxseg.predict`` computes for a batch
(``graph``): input ``images`` float32 (N, S, S, C) in [0, 1] — 8-bit values / 255,
S = ``config.data.image_size``, C the run's input channels (1 grayscale, 3 RGB) —
and output ``probabilities`` float32 (N, S, S, classes): sigmoid per channel
(binary, multilabel) or softmax over channels (multiclass), the mean over the
trials for a multi-trial workdir (``--trial`` picks one, ``--members`` some).
Resizing an image to S×S (``jaxseg.predict --mode=resize``) or tiling it, and the
threshold or argmax that makes a mask, stay with the caller; the threshold and
mode are stored with the export (``writers``). The batch is dynamic unless
``--batch=N``; H and W are fixed to S.

Every export is checked before the command returns: the written file is run
(onnxruntime, TensorFlow) on random images and must agree with
``jaxseg.predict``'s library function to ``TOLERANCE``; the largest difference
is reported. Packages: ONNX needs the ``export`` extra (jax2onnx, onnx,
onnxruntime); the SavedModel needs only TensorFlow, a core dependency.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxseg.errors import JaxsegError

FORMATS = ("onnx", "savedmodel")
TOLERANCE = 1e-4
INPUT_RANGE = "float32 in [0, 1] (8-bit values / 255, as jaxseg.predict reads images)"


@dataclasses.dataclass
class Exported:
    """What ``export`` wrote: where, which format, the model, its input and output, and the check."""

    path: str
    format: str
    model: str
    input_shape: tuple
    output_shape: tuple
    mode: str
    threshold: float
    members: list[str]
    max_abs_diff: float
    check_images: int


def parse_batch(batch: str | int | None) -> int | None:
    """``'dynamic'``/None -> None (symbolic batch), else a positive int."""
    if batch is None or str(batch).strip().lower() == "dynamic":
        return None
    try:
        n = int(str(batch))
    except ValueError:
        n = 0
    if n < 1:
        raise JaxsegError(f"--batch must be 'dynamic' or a whole number >= 1, got {batch!r}")
    return n


def load_model(workdir: str | Path, checkpoint: str = "best", trial: int | None = None,
               members: str | list[int] | None = None):
    """The run's ``Predictor``, one trial's, or the ``Ensemble`` of all trials / folds or of ``members``."""
    from jaxseg.inference import ensemble

    wd = Path(workdir)
    if not wd.exists():
        raise JaxsegError(f"--workdir={wd} does not exist")
    return ensemble.load(wd, checkpoint, trial=trial, members=members)


def contract(model, fmt: str, input_shape: tuple, output_shape: tuple, members: list[str]) -> dict:
    """What a deployer needs to know about the export, stored with it."""
    shape = lambda s: "(" + ", ".join("N" if d is None else str(d) for d in s) + ")"  # noqa: E731
    rule = "softmax over channels" if model.mode == "multiclass" else "sigmoid per channel"
    mask = "argmax over channels" if model.mode == "multiclass" else f"probability > {model.threshold}"
    return {"format": fmt, "input": f"images: {INPUT_RANGE}, NHWC {shape(input_shape)}",
            "output": f"probabilities: float32 NHWC {shape(output_shape)}, {rule}"
                      + (f", mean of {len(members)} trials" if len(members) > 1 else ""),
            "mode": model.mode, "threshold": model.threshold, "mask": mask, "members": members}


def check(model, runner, path: Path, batch: int | None, seed: int = 0) -> tuple[float, int]:
    """(max |exported − jaxseg.predict|, images) on random images; ``JaxsegError`` above ``TOLERANCE``."""
    n = batch or 2
    images = np.random.default_rng(seed).random((n, model.size, model.size, model.channels), np.float32)
    expected = model(images)
    try:
        got = runner(path, images)
    except Exception as e:  # a graph the runtime refuses is a converter bug: say so in one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise JaxsegError(f"{path} was written but its runtime cannot run it ({first}); "
                          "please report this model") from e
    if got.shape != expected.shape:
        raise JaxsegError(f"{path}: the export gives shape {got.shape}, jaxseg.predict {expected.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - expected)))
    if not diff <= TOLERANCE:
        raise JaxsegError(f"{path}: the export's probabilities differ from jaxseg.predict's by {diff:.2e} "
                          f"(> {TOLERANCE:g}) on {n} random images; please report this model")
    return diff, n


def export(workdir: str | Path, fmt: str, output: str | Path, batch: str | int | None = "dynamic",
           trial: int | None = None, members: str | list[int] | None = None, checkpoint: str = "best",
           opset: int = 17) -> Exported:
    """Writes the inference function of ``workdir`` to ``output`` in ``fmt`` and checks it; see the module docstring."""
    from jaxseg.exporting import graph, writers

    if fmt not in FORMATS:
        raise JaxsegError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    n = parse_batch(batch)
    out = Path(output)
    if not Path(workdir).exists():
        raise JaxsegError(f"--workdir={workdir} does not exist")
    writers.check_output(out, fmt)
    writers.require(fmt)
    model = load_model(workdir, checkpoint, trial, members)
    dtypes = {m.config.get("train", {}).get("dtype", "float32") or "float32" for m in graph.members_of(model)}
    if fmt == "onnx" and dtypes != {"float32"}:
        raise JaxsegError(f"--format=onnx: the run computes in {', '.join(sorted(dtypes))} (config.train.dtype), "
                          "which onnxruntime's Conv does not run; use --format=savedmodel")
    f, params = graph.inference_function(model)
    spec = graph.input_spec(model.size, model.channels, n)
    names = [str(m.workdir) for m in graph.members_of(model)]
    in_shape = (n, model.size, model.size, model.channels)
    out_shape = (n, model.size, model.size, model.num_classes)
    meta = contract(model, fmt, in_shape, out_shape, names)
    if fmt == "onnx":
        writers.write_onnx(f, params, spec, out, meta, opset)
    else:
        writers.write_savedmodel(f, params, spec, out, meta)
    diff, count = check(model, writers.RUNNERS[fmt], out, n)
    return Exported(str(out), fmt, model.describe(), in_shape, out_shape, model.mode, model.threshold, names,
                    diff, count)
