"""Prediction with a trained run on image files of any size, and on whole slides.

  python -m jaxseg.predict --workdir=runs/x --input=scans/ --output=preds/ [--mode=tile] [--tta]

The model: ``--workdir`` is a run (``config.json`` + ``checkpoints/``), or a
multi-trial workdir (``trial_<t>/``, sequential or vectorised): then the trials
are ensembled — the mean of their probabilities (nnU-Net's rule), then the
threshold or argmax as for one model — or ``--trial=N`` picks one
(``jaxseg.inference.ensemble``).

Inputs: PNG, JPEG, BMP, TIFF and DICOM files or folders, read as in training
(``jaxseg.inference.inputs``: 8-bit values / 255; grayscale, or RGB for
histopathology runs; DICOM through its modality and VOI LUTs). Each image is
either

* ``--mode=resize`` (default): resized (bilinear) to the model's ``image_size``,
  predicted, and the probabilities resized back; or
* ``--mode=tile``: cut into ``image_size`` tiles overlapping by ``--overlap``,
  predicted, and blended with a separable triangular window
  w(i) = 1 − |2i/(n−1) − 1| (+ε), so seams get no weight from a tile's edge.

``--tta`` averages the probabilities of the image and its horizontal and
vertical flips (flipped back). Outputs per input ``NAME``: ``NAME_prob.png``
(16-bit probability of the foreground, binary models) or ``NAME_prob.npy``
(float16 H×W×C, multi-class; ``--prob-format=npy``: float32 H×W×C for every
model), ``NAME_mask.png`` (0/255 binary, or class labels), and
``NAME_overlay.png`` (the image with the mask in red). Inputs sharing a stem
get distinct names (``jaxseg.inference.inputs.output_names``). Whole slides
(histopathology runs) are tiled over tissue and written as one label TIFF
(``jaxseg.inference.slides``). Unreadable inputs are listed at the end (exit
code 1); the others are still written.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import metrics, models
from jaxseg.errors import DataError, JaxsegError
from jaxseg.inference.inputs import (DICOM_EXTENSIONS, RASTER_EXTENSIONS, find_inputs, output_names,  # noqa: F401
                                     read_input)
from jaxseg.inference.workdirs import checkpoint_root
from jaxseg.losses.regional import probabilities
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg.training.run_log import tqdm

PROB_FORMATS = ("auto", "npy")


def input_channels(config: dict) -> int:
    """The channels the run was trained on: RGB for whole-slide patches, else ``config.data.channels``."""
    data = config.get("data", {})
    if data.get("name") == "histopathology":
        return 3
    return int(data.get("channels", 1) or 1)


def restore_state(root: Path, which: str = "best") -> tuple[dict, int, Path]:
    """(state as numpy trees, step, manager dir) of ``root/checkpoints/<which>`` (``latest`` when it is empty)."""
    mngr_dir = root / "checkpoints" / which
    if not mngr_dir.is_dir() or not list(ckpt_lib.open_read_only(mngr_dir).all_steps()):
        mngr_dir = root / "checkpoints" / "latest"
    steps = list(ckpt_lib.open_read_only(mngr_dir).all_steps()) if mngr_dir.is_dir() else []
    if not steps:
        raise JaxsegError(f"no checkpoint in {root / 'checkpoints'} (has the run finished an epoch?)")
    step = max(steps)
    return ckpt_lib.read_state(ckpt_lib.open_read_only(mngr_dir), step), step, mngr_dir


@functools.partial(jax.jit, static_argnums=(0, 3))
def _apply(model, variables, x, mode):
    return probabilities(model.apply(variables, x, train=False), mode=mode)


@functools.lru_cache(maxsize=32)
def _param_shapes(model, size: int, channels: int) -> dict:
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, channels)),
                                               train=False))
    return {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(shapes["params"])}


class Predictor:
    """A trained model restored from a workdir: ``predictor(batch NHWC float32) -> probabilities``.

    ``size``, ``channels`` (input), ``num_classes`` (output channels) and
    ``threshold`` describe it. A vectorised trial (``trial_<t>/`` beside a
    stacked ``checkpoints/``) takes slice t of the stacked state; ``restored``
    passes ``restore_state``'s (state, step, manager dir) instead of reading it again.
    """

    def __init__(self, workdir: str | Path, which: str = "best", *, restored: tuple | None = None):
        wd = Path(workdir)
        config_path = wd / "config.json"
        if not config_path.exists():
            raise JaxsegError(f"{config_path} not found — is {wd} a jaxseg workdir (config.json + checkpoints/, "
                              "or trial_<t>/ folders of a multi-trial run)?")
        self.workdir = wd
        self.config = json.loads(config_path.read_text())
        root, stacked_trial = checkpoint_root(wd, self.config)
        if restored is None:
            restored = restore_state(root, which)
            if stacked_trial is not None:
                restored = (jax.tree_util.tree_map(lambda x: np.asarray(x)[stacked_trial], restored[0]),
                            *restored[1:])
        state, self.step, self.checkpoint_dir = restored
        variables = {"params": state["params"]}
        if state.get("batch_stats"):
            variables["batch_stats"] = state["batch_stats"]
        self.variables = jax.device_put(variables)
        self.model = models.get_model(dict(self.config["model"]), self.config.get("train", {}).get("dtype", "float32"))
        self.size = int(self.config["data"]["image_size"])
        self.num_classes = int(self.config["model"].get("num_classes", 1) or 1)
        self.mode = models.output_mode(self.config["model"])
        self.threshold = float(self.config.get("eval", {}).get("threshold", 0.5))
        self.channels = self._channels(input_channels(self.config))

    def _channels(self, configured: int) -> int:
        """``configured``, or the other of 1/3 when only that fits the checkpoint's parameter shapes."""
        saved = {jax.tree_util.keystr(p): tuple(np.shape(x))
                 for p, x in jax.tree_util.tree_leaves_with_path(self.variables["params"])}
        for channels in dict.fromkeys((configured, 3 if configured == 1 else 1)):
            if _param_shapes(self.model, self.size, channels) == saved:
                return channels
        raise JaxsegError(f"{self.checkpoint_dir}: the checkpoint's parameters do not fit the model of "
                          f"{self.workdir / 'config.json'} ({self.config['model'].get('name')}, "
                          f"{configured} input channels); was config.json edited after training?")

    def describe(self) -> str:
        return f"{self.workdir} ({self.checkpoint_dir.name} checkpoint, step {self.step})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(_apply(self.model, self.variables, jnp.asarray(batch, jnp.float32), self.mode))


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(jax.image.resize(jnp.asarray(x), (h, w, x.shape[-1]), "bilinear", antialias=True))


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Tile starts covering [0, length) with stride ≈ tile·(1 − overlap); the last tile ends at length."""
    if length <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return sorted(set(starts))


def blend_window(tile: int) -> np.ndarray:
    """Separable triangular weights w(i)·w(j), w(i) = 1 − |2i/(n−1) − 1| + 1e-3."""
    w = 1.0 - np.abs(2.0 * np.arange(tile) / max(tile - 1, 1) - 1.0) + 1e-3
    return np.outer(w, w).astype(np.float32)[..., None]


def _views(tta: bool):
    """(forward, inverse) flips on HWC arrays."""
    ident = (lambda a: a, lambda a: a)
    if not tta:
        return [ident]
    return [ident, (lambda a: a[:, ::-1], lambda a: a[:, ::-1]), (lambda a: a[::-1], lambda a: a[::-1])]


def _crops(image: np.ndarray, size: int, mode: str, overlap: float) -> tuple[list[np.ndarray], list, tuple]:
    """The model-size inputs for one image and how to place their outputs back."""
    h, w = image.shape[:2]
    if mode == "resize":
        return [_resize(image, size, size)], [None], (h, w)
    ph, pw = max(h, size), max(w, size)
    padded = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    places = [(y, x) for y in tile_origins(ph, size, overlap) for x in tile_origins(pw, size, overlap)]
    return [padded[y:y + size, x:x + size] for y, x in places], places, (ph, pw)


def predict_image(predictor, image: np.ndarray, mode: str = "resize", overlap: float = 0.25,
                  tta: bool = False, batch_size: int = 8) -> np.ndarray:
    """Probabilities (H, W, C) for one float32 (H, W, C_in) image (``predictor``: a Predictor or Ensemble)."""
    size = predictor.size
    h, w = image.shape[:2]
    crops, places, (ph, pw) = _crops(image, size, mode, overlap)
    views = _views(tta)
    inputs = [fwd(c) for c in crops for fwd, _ in views]
    outputs = []
    for start in range(0, len(inputs), batch_size):
        chunk = np.stack(inputs[start:start + batch_size])
        pad = batch_size - len(chunk)  # a fixed batch shape: compiled once
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
        outputs += list(predictor(chunk)[: batch_size - pad])
    per_crop = [np.mean([inv(outputs[i * len(views) + j]) for j, (_, inv) in enumerate(views)], axis=0)
                for i in range(len(crops))]
    if mode == "resize":
        return _resize(per_crop[0], h, w)
    window = blend_window(size)
    acc = np.zeros((ph, pw, per_crop[0].shape[-1]), np.float32)
    weight = np.zeros((ph, pw, 1), np.float32)
    for (y, x), p in zip(places, per_crop):
        acc[y:y + size, x:x + size] += p * window
        weight[y:y + size, x:x + size] += window
    return (acc / weight)[:h, :w]


def labels_of(probs: np.ndarray, threshold: float, mode: str = "binary") -> np.ndarray:
    """The predicted labels by the one rule of evaluation (``jaxseg.metrics.predict_masks``): binary,
    probability > threshold as (H, W) uint8 0/1; multiclass, the argmax class index (H, W) uint8;
    multilabel, probability > threshold per class as (H, W, C) uint8 0/1."""
    masks = np.asarray(metrics.predict_masks(probs[None], mode, threshold))[0]
    if mode == "multiclass":
        return masks.argmax(-1).astype(np.uint8)  # the index of the one-hot
    return masks[..., 0].astype(np.uint8) if mode == "binary" else masks.astype(np.uint8)


def class_palette(num_classes: int) -> list[int]:
    """A flat RGB palette for an indexed PNG: class 0 black, then well-separated hues."""
    import colorsys

    colours = [(0, 0, 0)] + [tuple(round(255 * v) for v in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 1.0))
                             for i in range(max(num_classes - 1, 0))]
    return [v for rgb in colours for v in rgb] + [0] * (768 - 3 * len(colours))


def _probability_png(path: Path, p: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(np.round(p * 65535).astype(np.uint16)).save(path)
    return path


def write_outputs(out_dir: Path, stem: str, image: np.ndarray, probs: np.ndarray, threshold: float,
                  prob_format: str = "auto", mode: str = "binary") -> list[Path]:
    """The files of one prediction; returns their paths.

    binary      ``stem_prob.png`` (16-bit probability), ``stem_mask.png`` (0/255)
    multiclass  ``stem_prob_<c>.png`` per class, ``stem_mask.png`` (indexed PNG: pixel = class index,
                with a palette so viewers show colours)
    multilabel  ``stem_prob_<c>.png`` and ``stem_mask_<c>.png`` (0/255) per class
    and ``stem_overlay.png`` (the image, the predicted foreground tinted red). ``prob_format='npy'``
    writes the probabilities as one float32 ``stem_prob.npy`` (H, W, C) instead of PNGs.
    """
    from PIL import Image

    c = probs.shape[-1]
    if prob_format == "npy":
        np.save(out_dir / f"{stem}_prob.npy", probs.astype(np.float32))
        written = [out_dir / f"{stem}_prob.npy"]
    elif c == 1:
        written = [_probability_png(out_dir / f"{stem}_prob.png", probs[..., 0])]
    else:
        written = [_probability_png(out_dir / f"{stem}_prob_{k}.png", probs[..., k]) for k in range(c)]
    labels = labels_of(probs, threshold, mode)
    if mode == "multilabel":
        for k in range(c):
            Image.fromarray(labels[..., k] * 255).save(out_dir / f"{stem}_mask_{k}.png")
            written.append(out_dir / f"{stem}_mask_{k}.png")
        foreground = labels.any(-1)
    else:
        mask = Image.fromarray(labels * 255 if mode == "binary" else labels)
        if mode == "multiclass":
            mask = mask.convert("P")
            mask.putpalette(class_palette(c))
        mask.save(out_dir / f"{stem}_mask.png")
        written.append(out_dir / f"{stem}_mask.png")
        foreground = labels > 0
    rgb = image[..., :3].copy() if image.shape[-1] >= 3 else np.repeat(image.mean(-1, keepdims=True), 3, -1)
    rgb[foreground] = 0.6 * rgb[foreground] + 0.4 * np.array([1.0, 0.0, 0.0])
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(out_dir / f"{stem}_overlay.png")
    return written + [out_dir / f"{stem}_overlay.png"]


@dataclasses.dataclass
class Written:
    """One predicted input: its outputs, and for a slide how (``downsample``, output size)."""

    input: str
    name: str
    outputs: list[str]
    slide: dict | None = None


@dataclasses.dataclass
class Prediction:
    """What ``predict_files`` did: the model it used, the inputs written and those that failed."""

    model: str
    written: list[Written]
    failures: list[tuple[str, str]]


def _check_options(mode: str, overlap: float, downsample: int, prob_format: str) -> None:
    if mode not in ("resize", "tile"):
        raise JaxsegError(f"--mode must be 'resize' or 'tile', got {mode!r}")
    if not 0.0 <= overlap < 1.0:
        raise JaxsegError(f"--overlap must be in [0, 1), got {overlap}")
    if int(downsample) != downsample or downsample < 1:
        raise JaxsegError(f"--downsample must be a whole number >= 1 (1 = the slide's level 0), got {downsample}")
    if prob_format not in PROB_FORMATS:
        raise JaxsegError(f"--prob-format must be one of {PROB_FORMATS}, got {prob_format!r}")


def predict_files(workdir: str, inputs: list[str], output: str, mode: str = "resize", overlap: float = 0.25,
                  tta: bool = False, batch_size: int = 8, checkpoint: str = "best",
                  threshold: float | None = None, progress: bool = True, trial: int | None = None,
                  downsample: int = 1, prob_format: str = "auto", members: str | None = None) -> Prediction:
    """Predicts every input with the run (or trials' ensemble) in ``workdir``; see the module docstring."""
    from jaxseg.inference import ensemble, slides

    _check_options(mode, overlap, downsample, prob_format)
    model = ensemble.load(workdir, checkpoint, trial=trial, threshold=threshold, members=members)
    histo = model.config.get("data", {}).get("name") == "histopathology"
    files = find_inputs(inputs, slides.SLIDE_ONLY_EXTENSIONS if histo else ())
    names = output_names(files)
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Prediction(model.describe(), [], [])
    for path, name in tqdm(list(zip(files, names)), desc="predict", disable=not progress, dynamic_ncols=True):
        try:
            if slides.is_slide(path, histo):
                info = slides.predict_slide(model, path, out_dir, name, int(downsample), overlap=overlap, tta=tta,
                                            batch_size=batch_size, progress=progress)
                result.written.append(Written(str(path), name, [info["output"]], info))
                continue
            image = read_input(path, model.channels)
        except DataError as e:
            result.failures.append((str(path), str(e)))
            continue
        probs = predict_image(model, image, mode, overlap, tta, batch_size)
        outs = write_outputs(out_dir, name, image, probs, model.threshold, prob_format, model.mode)
        result.written.append(Written(str(path), name, [str(o) for o in outs]))
    return result


def run(workdir: str, inputs: list[str], output: str, mode: str = "resize", overlap: float = 0.25,
        tta: bool = False, batch_size: int = 8, checkpoint: str = "best",
        threshold: float | None = None, progress: bool = True, **options) -> list[tuple[str, str]]:
    """Predicts every input; returns the ``(file, error)`` pairs that failed (``predict_files`` for more)."""
    return predict_files(workdir, inputs, output, mode, overlap, tta, batch_size, checkpoint, threshold,
                         progress, **options).failures
