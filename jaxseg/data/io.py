"""Decoding image and mask files into arrays, with a ``DataError`` naming the file.

One place decodes every 2D file our loaders read (COVID-QU-Ex, folder datasets,
slide label masks):

* PNG, JPEG and BMP through Pillow (restricted to those formats; truncated
  files are errors, never padded), TIFF through tifffile (the first page;
  JPEG-in-TIFF needs ``imagecodecs``). The format is sniffed from the bytes,
  not the extension.
* Images come back as ``uint8`` arrays, ``(H, W)`` for grayscale (RGB stored
  files are converted with ITU-R 601 luma weights, as Pillow's ``convert('L')``;
  COVID-QU-Ex stores a few grayscale X-rays as RGB, thesis §6.1.1) or
  ``(H, W, 3)`` for colour. 16-bit samples are scaled to 8 bits (``v / 257``).
* Masks come back as ``uint8`` label maps ``(H, W)``. A binary mask may be
  stored as 0/1 or 0/255 (COVID-QU-Ex uses 0/255) and becomes {0, 1}; any other
  value is an error (a JPEG-compressed mask usually is one). A multi-class mask
  holds integer labels ``0..num_classes-1``; palette PNGs give their indices.
  A mask stored as RGB is accepted only when its three channels are equal.

Anything else — random bytes, a truncated PNG, an unsupported sample type —
raises :class:`jaxseg.errors.DataError` with the path. Nothing is unpickled.
"""

from __future__ import annotations

import io
import os

import numpy as np

from jaxseg.errors import DataError

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PIL_FORMATS = ["PNG", "JPEG", "BMP"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_tiff(data: bytes) -> bool:
    return data[:4] in _TIFF_MAGIC


def _decode_raw(data: bytes, name: str, palette_to_rgb: bool) -> np.ndarray:
    """A supported file's pixels as stored: (H, W) or (H, W, C); palette images as indices or RGB."""
    if not data:
        raise DataError(name, "empty file")
    try:
        if is_tiff(data):
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                if not tif.pages:
                    raise ValueError("no image in the TIFF file")
                arr = tif.pages.first.asarray()
        else:
            from PIL import Image

            with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as im:
                im.load()
                if im.mode == "1":
                    im = im.convert("L")
                elif im.mode in ("P", "PA") and palette_to_rgb:
                    im = im.convert("RGB")
                arr = np.array(im)
    except DataError:
        raise
    except Exception as e:  # decoders raise many types (OSError, SyntaxError, ValueError, ...)
        raise DataError(name, f"cannot decode image file ({type(e).__name__}: {e})") from e
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1 or (arr.ndim == 3 and arr.shape[-1] > 4):
        raise DataError(name, f"unsupported pixel array of shape {arr.shape}")
    return arr


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.min(initial=0) >= 0 and arr.max(initial=0) < 65536):
        return np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
    raise DataError(name, f"unsupported sample type {arr.dtype} (expected 8- or 16-bit integers)")


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma (Pillow's ``convert('L')``): L = (299 R + 587 G + 114 B) / 1000, rounded."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)


def decode_image(data: bytes, name: str = "<bytes>", channels: int = 1) -> np.ndarray:
    """Image bytes -> ``uint8`` array: ``(H, W)`` when ``channels == 1``, else ``(H, W, 3)``."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    arr = _to_uint8(_decode_raw(data, name, palette_to_rgb=True), name)
    if arr.ndim == 3:
        if arr.shape[-1] == 2:  # gray + alpha
            arr = arr[..., 0]
        elif channels == 1:
            arr = _luma(arr[..., :3])
        else:
            arr = arr[..., :3]
    if channels == 3 and arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr)


def labels_from_mask(arr: np.ndarray, name: str, num_classes: int | None = None,
                     ignore_index: int | None = None) -> np.ndarray:
    """A stored mask array -> ``uint8`` labels.

    Binary ({0,1} or {0,255} -> {0,1}) when ``num_classes`` is None or at most 2 and no
    ``ignore_index`` is given; otherwise class indices 0..C-1, plus ``ignore_index`` where
    pixels are to be ignored. Any other value is a ``DataError`` naming the file and the values.
    """
    if arr.ndim == 3:
        ch = arr[..., : min(arr.shape[-1], 3)]
        if not (ch == ch[..., :1]).all():
            raise DataError(name, "mask is stored in colour with different channels; expected a "
                                  "grayscale or label image")
        arr = ch[..., 0]
    if arr.dtype.kind not in "biu":
        raise DataError(name, f"mask has non-integer sample type {arr.dtype}")
    values = np.unique(arr)
    if ignore_index is None and (num_classes is None or num_classes <= 2):
        vals = set(values.tolist())
        if vals <= {0, 1}:
            return arr.astype(np.uint8)
        if vals <= {0, 255}:
            return (arr == 255).astype(np.uint8)
        bad = sorted(vals - {0, 1, 255})[:8] or sorted(vals)
        raise DataError(name, f"binary mask has values {bad}; expected only 0/1 or 0/255")
    c = max(num_classes or 1, 2)
    bad = sorted(set(values.tolist()) - set(range(c)) - ({ignore_index} if ignore_index is not None else set()))
    if bad:
        also = f" or the ignore label {ignore_index}" if ignore_index is not None else ""
        raise DataError(name, f"mask has label(s) {bad[:8]}, but there are only {c} classes (0..{c - 1}){also}")
    return arr.astype(np.uint8)


def decode_mask(data: bytes, name: str = "<bytes>", num_classes: int | None = None,
                ignore_index: int | None = None) -> np.ndarray:
    """Mask bytes -> ``uint8`` label map ``(H, W)`` (see :func:`labels_from_mask`)."""
    return labels_from_mask(_decode_raw(data, name, palette_to_rgb=False), name, num_classes, ignore_index)


def read_bytes(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(path, f"cannot read file ({e.strerror or e})") from e


def read_image(path: str | os.PathLike, channels: int = 1) -> np.ndarray:
    return decode_image(read_bytes(path), os.fspath(path), channels)


def read_mask(path: str | os.PathLike, num_classes: int | None = None, ignore_index: int | None = None) -> np.ndarray:
    return decode_mask(read_bytes(path), os.fspath(path), num_classes, ignore_index)


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: str, mask_path: str) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                                   f"{image_path} is {image.shape[1]}x{image.shape[0]}")


def resize(arr: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    """Resizes a ``uint8`` (H, W[, C]) array to ``size x size``: bilinear for images, nearest for masks."""
    if arr.shape[:2] == (size, size):
        return arr
    from PIL import Image

    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(arr).resize((size, size), method))
