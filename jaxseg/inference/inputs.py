"""Prediction inputs: finding the files, reading them as the model's training data, naming their outputs.

Reading (``read_input``) gives float32 (H, W, C) in [0, 1], as training saw it:

* PNG, JPEG, BMP, TIFF: decoded by ``jaxseg.data.io`` (8-bit values / 255),
  grayscale for 1-channel models, RGB for 3-channel ones (histopathology).
* DICOM (pydicom): the image a radiologist is shown. The stored values pass
  through ``pydicom.pixels.apply_modality_lut`` (Modality LUT, or rescale
  slope/intercept: e.g. Hounsfield units), then ``apply_voi_lut`` (the VOI LUT
  sequence, else the first window centre/width, linear or sigmoid). With a VOI
  transform the image is scaled by that transform's output range, so what lies
  below the window is 0 and what lies above it is 1 whatever the image holds;
  without one, min-max scaled. MONOCHROME1 (low values bright) is inverted so
  bright is always 1. Colour DICOM is scaled by its bit depth.

Output names (``output_names``): an input's outputs are named by its stem
(``scan.png`` -> ``scan_mask.png``). Only when two inputs of one command would
get the same name (compared case-insensitively), they are told apart:

1. by their extension when those differ: ``a.png``, ``a.dcm`` -> ``a_png``, ``a_dcm``;
2. then by their parent folders, nearest first, until unique:
   ``x/a.png``, ``y/a.png`` -> ``x_a``, ``y_a``;
3. then, as a last resort, by a counter: ``a_2``.

A file given twice (directly and through its folder) is predicted once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from jaxseg.errors import DataError, JaxsegError

DICOM_EXTENSIONS = (".dcm", ".dicom")
RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def find_inputs(inputs: list[str], extra_extensions: tuple[str, ...] = ()) -> list[Path]:
    """The files named by ``inputs`` (files, or folders: their image files), each once, in order."""
    extensions = RASTER_EXTENSIONS + DICOM_EXTENSIONS + tuple(extra_extensions)
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in extensions)
        elif p.exists():
            files.append(p)
        else:
            raise JaxsegError(f"input {p} does not exist")
    if not files:
        raise JaxsegError(f"no PNG, JPEG, BMP, TIFF or DICOM files in {inputs}")
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _clashes(names: list[str]) -> list[int]:
    counts = Counter(n.casefold() for n in names)
    return [i for i, n in enumerate(names) if counts[n.casefold()] > 1]


def output_names(files: list[Path]) -> list[str]:
    """A unique output name per input (see the module docstring for the rule)."""
    names = [f.stem for f in files]
    clash = _clashes(names)
    groups: dict[str, list[int]] = {}
    for i in clash:
        groups.setdefault(names[i].casefold(), []).append(i)
    for members in groups.values():  # 1. the extension, where the clashing files' extensions differ
        if len({files[i].suffix.lower() for i in members}) > 1:
            for i in members:
                if files[i].suffix:
                    names[i] = f"{files[i].stem}_{files[i].suffix[1:].lower()}"
    base = list(names)
    parents = [f.resolve().parent.parts[1:] for f in files]
    depth = 0
    while clash := _clashes(names):  # 2. the parent folders, nearest first
        depth += 1
        grew = [i for i in clash if depth <= len(parents[i])]
        if not grew:
            break
        for i in grew:
            names[i] = "_".join(parents[i][-depth:] + (base[i],))
    counts: Counter = Counter()
    for i in _clashes(names):  # 3. a counter
        counts[names[i].casefold()] += 1
        if counts[names[i].casefold()] > 1:
            names[i] = f"{names[i]}_{counts[names[i].casefold()]}"
    return names


def read_input(path: Path, channels: int = 1) -> np.ndarray:
    """An input file as float32 (H, W, C) in [0, 1]; raises ``DataError`` naming the file."""
    if path.suffix.lower() in DICOM_EXTENSIONS:
        img = read_dicom(path)
    else:
        from jaxseg.data import io

        img = io.read_image(path, channels=1 if channels == 1 else 3).astype(np.float32) / 255.0
        if img.ndim == 2:
            img = img[..., None]
    if channels != img.shape[-1]:
        if img.shape[-1] == 1:
            img = np.repeat(img, channels, axis=-1)
        else:  # colour to one channel: ITU-R 601 luma, as jaxseg.data.io
            img = (img[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
            img = np.repeat(img, channels, axis=-1) if channels > 1 else img
    return np.ascontiguousarray(img, np.float32)


def read_dicom(path: Path) -> np.ndarray:
    """A single-frame DICOM image as float32 (H, W, 1) grey or (H, W, 3) colour in [0, 1]."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut

        ds = pydicom.dcmread(str(path))
        raw = ds.pixel_array
        photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        if samples == 3 or (raw.ndim == 3 and raw.shape[-1] == 3 and samples != 1):
            if raw.ndim != 3:
                raise ValueError(f"expected a single colour frame, got pixel array of shape {raw.shape}")
            bits = int(getattr(ds, "BitsStored", 8) or 8)
            return (raw.astype(np.float32) / float(2 ** bits - 1)).clip(0, 1)
        if raw.ndim != 2:
            raise ValueError(f"expected a single 2D frame, got pixel array of shape {raw.shape} "
                             "(multi-frame DICOM is not supported; export one frame)")
        arr, span = _voi(apply_modality_lut(raw, ds), ds)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - pydicom and its pixel handlers raise many types
        raise DataError(str(path), f"unreadable DICOM file ({type(e).__name__}: {e})") from None
    arr = arr.astype(np.float64)
    lo, hi = span if span is not None else (float(arr.min()), float(arr.max()))
    out = np.clip((arr - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(arr)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32)[..., None]


def _voi(arr: np.ndarray, ds) -> tuple[np.ndarray, tuple[float, float] | None]:
    """``apply_voi_lut`` of the modality values, and the (min, max) the VOI transform can output (None: no VOI)."""
    from pydicom.pixels import apply_voi_lut

    seq = ds.get("VOILUTSequence")
    lut = bool(seq) and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None
    windowed = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    if not lut and not windowed:
        return arr, None
    if lut:  # the VOI LUT takes stored integers; its outputs span its table
        arr = np.rint(arr).astype(np.int64) if arr.dtype.kind == "f" else arr
        n, first = int(seq[0].LUTDescriptor[0]) or 2 ** 16, int(seq[0].LUTDescriptor[1])
        table = apply_voi_lut(np.arange(first, first + n, dtype=np.int64), ds)
    else:  # windowing sends everything below the window to y_min and above it to y_max
        with np.errstate(over="ignore"):
            table = apply_voi_lut(np.array([-1e300, 1e300]), ds)
    return apply_voi_lut(arr, ds), (float(np.min(table)), float(np.max(table)))
