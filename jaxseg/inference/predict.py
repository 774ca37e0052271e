"""Prediction with a trained run on image files of any size.

  python -m jaxseg.predict --workdir=runs/x --input=scans/ --output=preds/ [--mode=tile] [--tta]

Inputs: PNG, JPEG, BMP, TIFF (decoded by ``jaxseg.data.io``) and DICOM (pydicom;
rescale slope/intercept applied, then min-max scaled to [0, 1]); files or folders.
Each image is normalised as in training (8-bit values / 255) and either

* ``--mode=resize`` (default): resized (bilinear) to the model's ``image_size``,
  predicted, and the probabilities resized back; or
* ``--mode=tile``: cut into ``image_size`` tiles overlapping by ``--overlap``,
  predicted, and blended with a separable triangular window
  w(i) = 1 − |2i/(n−1) − 1| (+ε), so seams get no weight from a tile's edge.

``--tta`` averages the probabilities of the image and its horizontal and
vertical flips (flipped back). Outputs per input ``NAME``: ``NAME_prob.png``
(16-bit probability of the foreground, binary models) or ``NAME_prob.npy``
(float16 H×W×C, multi-class), ``NAME_mask.png`` (0/255 binary, or class labels),
and ``NAME_overlay.png`` (the image with the mask in red). Unreadable inputs are
listed at the end (exit code 1); the others are still written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jaxseg.training.run_log import tqdm

from jaxseg.training import checkpoint as ckpt_lib
from jaxseg import models
from jaxseg.errors import JaxsegError
from jaxseg.losses.regional import probabilities

DICOM_EXTENSIONS = (".dcm", ".dicom")
RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class Predictor:
    """A trained model restored from a workdir: ``predictor(batch NHWC float32) -> probabilities``."""

    def __init__(self, workdir: str | Path, which: str = "best"):
        wd = Path(workdir)
        config_path = wd / "config.json"
        if not config_path.exists():
            raise JaxsegError(f"{config_path} not found — is {wd} a jaxseg workdir?")
        self.config = json.loads(config_path.read_text())
        # a vectorised trial (trial_<t>/) shares its parent's stacked checkpoint: take slice t
        train_cfg = self.config.get("train", {})
        stacked = not (wd / "checkpoints").is_dir() and (wd.parent / "checkpoints").is_dir() \
            and train_cfg.get("vectorize_trials", False)
        root = wd.parent if stacked else wd
        mngr_dir = root / "checkpoints" / which
        if not mngr_dir.is_dir() or not list(ckpt_lib.open_read_only(mngr_dir).all_steps()):
            mngr_dir = root / "checkpoints" / "latest"
        if not mngr_dir.is_dir():
            raise JaxsegError(f"no checkpoint in {root / 'checkpoints'}")
        mngr = ckpt_lib.open_read_only(mngr_dir)
        steps = list(mngr.all_steps())
        if not steps:
            raise JaxsegError(f"no checkpoint in {root / 'checkpoints'}")
        self.step = max(steps)
        state = ckpt_lib.read_state(mngr, self.step)
        if stacked:
            t = int(train_cfg.get("trial", 0))
            state = jax.tree_util.tree_map(lambda x: np.asarray(x)[t], state)
        self.variables = {"params": state["params"]}
        if state.get("batch_stats"):
            self.variables["batch_stats"] = state["batch_stats"]
        model_cfg = dict(self.config["model"])
        self.model = models.get_model(model_cfg, self.config.get("train", {}).get("dtype", "float32"))
        self.size = int(self.config["data"]["image_size"])
        self.channels = int(self.config["data"].get("channels", 1) or 1)
        self.threshold = float(self.config.get("eval", {}).get("threshold", 0.5))
        self._apply = jax.jit(lambda v, x: probabilities(self.model.apply(v, x, train=False)))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._apply(self.variables, jnp.asarray(batch, jnp.float32)))


def read_input(path: Path, channels: int = 1) -> np.ndarray:
    """An input file as float32 (H, W, C) in [0, 1]; raises ``DataError`` naming the file."""
    from jaxseg.errors import DataError

    if path.suffix.lower() in DICOM_EXTENSIONS:
        try:
            import pydicom

            ds = pydicom.dcmread(str(path))
            arr = ds.pixel_array.astype(np.float32)
            arr = arr * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
        except Exception as e:  # noqa: BLE001 - pydicom raises many types
            raise DataError(str(path), f"unreadable DICOM file ({type(e).__name__}: {e})") from None
        if arr.ndim == 3 and arr.shape[-1] == 3:
            arr = arr @ np.array([0.299, 0.587, 0.114], np.float32)
        if arr.ndim != 2:
            raise DataError(str(path), f"expected a single 2D frame, got pixel array of shape {arr.shape}")
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            arr = 1.0 - arr
        img = arr[..., None]
    else:
        from jaxseg.data import io

        img = io.read_image(path, channels=channels).astype(np.float32) / 255.0
        if img.ndim == 2:
            img = img[..., None]
    if channels != img.shape[-1]:
        img = np.repeat(img[..., :1], channels, axis=-1) if img.shape[-1] == 1 else img.mean(-1, keepdims=True)
    return img


def find_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir()
                            if f.is_file() and f.suffix.lower() in RASTER_EXTENSIONS + DICOM_EXTENSIONS)
        elif p.exists():
            files.append(p)
        else:
            raise JaxsegError(f"input {p} does not exist")
    if not files:
        raise JaxsegError(f"no PNG, JPEG, BMP, TIFF or DICOM files in {inputs}")
    return files


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
    """Probabilities (H, W, C) for one float32 (H, W, C_in) image."""
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


def write_outputs(out_dir: Path, stem: str, image: np.ndarray, probs: np.ndarray, threshold: float) -> None:
    from PIL import Image

    if probs.shape[-1] == 1:
        fg = probs[..., 0]
        Image.fromarray(np.round(fg * 65535).astype(np.uint16)).save(out_dir / f"{stem}_prob.png")
        mask = fg > threshold
        Image.fromarray((mask * 255).astype(np.uint8)).save(out_dir / f"{stem}_mask.png")
    else:
        np.save(out_dir / f"{stem}_prob.npy", probs.astype(np.float16))
        labels = probs.argmax(-1).astype(np.uint8)
        Image.fromarray(labels).save(out_dir / f"{stem}_mask.png")
        mask = labels > 0
    gray = image.mean(-1)
    rgb = np.stack([gray] * 3, -1)
    rgb[mask] = 0.6 * rgb[mask] + 0.4 * np.array([1.0, 0.0, 0.0])
    Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(out_dir / f"{stem}_overlay.png")


def run(workdir: str, inputs: list[str], output: str, mode: str = "resize", overlap: float = 0.25,
        tta: bool = False, batch_size: int = 8, checkpoint: str = "best",
        threshold: float | None = None, progress: bool = True) -> list[tuple[str, str]]:
    """Predicts every input; returns the ``(file, error)`` pairs that failed."""
    from jaxseg.errors import DataError

    if mode not in ("resize", "tile"):
        raise JaxsegError(f"--mode must be 'resize' or 'tile', got {mode!r}")
    if not 0.0 <= overlap < 1.0:
        raise JaxsegError(f"--overlap must be in [0, 1), got {overlap}")
    predictor = Predictor(workdir, checkpoint)
    files = find_inputs(inputs)
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    thr = predictor.threshold if threshold is None else threshold
    failures = []
    for path in tqdm(files, desc="predict", disable=not progress, dynamic_ncols=True):
        try:
            image = read_input(path, predictor.channels)
        except DataError as e:
            failures.append((str(path), str(e)))
            continue
        probs = predict_image(predictor, image, mode, overlap, tta, batch_size)
        write_outputs(out_dir, path.stem, image, probs, thr)
    return failures
