"""The augmentation's settings and its per-example maths, shared by tf.data and on-device augmentation.

No TensorFlow here: the functions take an array namespace ``xp`` (``jax.numpy``,
or ``TF_OPS`` from ``jaxseg.data.augment.host``), so the host pipeline and the
jitted train step draw the same kind of transform from their uniforms.

Geometry (the same for ``image``, ``mask`` and any ``dist`` distance map) is one
affine map per example, output pixel ``p`` -> input point ``c + R(θ) F (p - c_out)``:

* ``F``  horizontal and/or vertical flip (``flips``: 'none' | 'horizontal' | 'vertical' | 'both');
* ``R``  rotation by θ uniform in ±``rotation_limit`` degrees (any angle);
* ``c``  the crop centre. Without ``crop_size`` the output is the whole image
  rotated about its centre (corners filled with 0). With ``crop_size`` the output
  is a ``crop_size``² window: a *random crop* — axis-aligned window inside the
  image, then rotated about its own centre — or, with ``random_pick``, the
  thesis's "random pick" (§6.1.2, Tables 7-8): a window rotated by θ whose four
  corners all lie inside the image (patch), so no pixel is padding.
  Centres are drawn so that θ = 0 samples whole pixels: unrotated crops and
  flips are exact copies.

Photometry acts on the image only: brightness ``+ U(±brightness)`` and contrast
``(x − mean)·U(1 ± contrast) + mean``, clipped to [0, 1].
"""

from __future__ import annotations

import dataclasses
import math

FLIPS = ("none", "horizontal", "vertical", "both")
PLACES = ("host", "device")
SPATIAL_KEYS = ("image", "mask", "dist", "pixel_weight")
NEAREST_KEYS = ("mask", "pixel_weight")  # pixel_weight fills with 0: pixels from outside are ignored
NUM_UNIFORMS = 7  # per example: flip x, flip y, angle, centre x, centre y, brightness, contrast


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The ``config.data`` augmentation keys, with their defaults (everything off).

    ``augment_on``: 'host' runs the augmentation in tf.data worker threads,
    'device' inside the jitted train step (``jaxseg.data.augment.device``).
    """

    augment: bool = False
    flips: str = "none"
    rotation_limit: float = 0.0  # degrees
    crop_size: int | None = None
    random_pick: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    augment_on: str = "device"

    def __post_init__(self):
        if self.flips not in FLIPS:
            raise ValueError(f"config.data.flips must be one of {FLIPS}, got {self.flips!r}")
        if not 0 <= self.rotation_limit <= 180:
            raise ValueError(f"config.data.rotation_limit must be in [0, 180] degrees, got {self.rotation_limit}")
        if self.crop_size is not None and self.crop_size < 1:
            raise ValueError(f"config.data.crop_size must be positive, got {self.crop_size}")
        if self.random_pick and self.crop_size is None:
            raise ValueError("config.data.random_pick needs config.data.crop_size")
        if self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ValueError("config.data.brightness must be >= 0 and contrast in [0, 1)")
        if self.augment_on not in PLACES:
            raise ValueError(f"config.data.augment_on must be one of {PLACES}, got {self.augment_on!r}")

    @classmethod
    def from_config(cls, data, **overrides) -> "AugmentConfig":
        """Reads the keys present in ``config.data`` (a ConfigDict or dict); absent keys keep defaults."""
        kw = {f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)}
        kw.update(overrides)
        return cls(**kw)

    @property
    def geometric(self) -> bool:
        return self.flips != "none" or self.rotation_limit > 0 or self.crop_size is not None

    @property
    def photometric(self) -> bool:
        return bool(self.brightness or self.contrast)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(out_h, out_w) of augmented examples cut from height×width inputs; checks the crop fits."""
        if self.crop_size is None:
            return height, width
        if self.crop_size > height or self.crop_size > width:
            raise ValueError(f"crop_size {self.crop_size} is larger than the {height}x{width} images")
        return self.crop_size, self.crop_size


def affine_transforms(u, height: int, width: int, out_h: int, out_w: int, cfg: AugmentConfig, xp):
    """Per-example [B, 8] projective transforms (output pixel -> input point) from uniforms ``u`` [B, ≥5].

    The layout is TensorFlow's ``ImageProjectiveTransformV3``:
    ``(a0, a1, a2, b0, b1, b2, 0, 0)`` maps output (x, y) to input
    ``(a0·x + a1·y + a2, b0·x + b1·y + b2)``, in pixel-index coordinates.
    """
    one = xp.ones_like(u[:, 0])
    fx = xp.where(u[:, 0] < 0.5, -one, one) if cfg.flips in ("horizontal", "both") else one
    fy = xp.where(u[:, 1] < 0.5, -one, one) if cfg.flips in ("vertical", "both") else one
    theta = (2.0 * u[:, 2] - 1.0) * (cfg.rotation_limit * math.pi / 180.0)
    cos, sin = xp.cos(theta), xp.sin(theta)
    m00, m01, m10, m11 = cos * fx, -sin * fy, sin * fx, cos * fy
    cox, coy = (out_w - 1) / 2.0, (out_h - 1) / 2.0

    def offset(uniform, size, ext, out_centre):
        """Integer-when-possible shift t = c - c_out of the window centre, keeping ±ext inside [0, size-1]."""
        lo = xp.ceil(ext - out_centre)
        hi = xp.floor(size - 1 - ext - out_centre)
        t = lo + xp.floor(uniform * (hi - lo + 1.0))
        return xp.where(hi >= lo, xp.minimum(t, hi), (size - 1) / 2.0 - out_centre)

    if cfg.crop_size is None:
        tx = one * ((width - 1) / 2.0 - cox)
        ty = one * ((height - 1) / 2.0 - coy)
    else:
        if cfg.random_pick:  # the rotated window's half-extents
            ext_x = xp.abs(cos) * cox + xp.abs(sin) * coy
            ext_y = xp.abs(sin) * cox + xp.abs(cos) * coy
        else:
            ext_x, ext_y = cox * one, coy * one
        tx = offset(u[:, 3], float(width), ext_x, cox)
        ty = offset(u[:, 4], float(height), ext_y, coy)
    cx, cy = cox + tx, coy + ty
    zero = 0.0 * one
    return xp.stack([m00, m01, cx - m00 * cox - m01 * coy,
                     m10, m11, cy - m10 * cox - m11 * coy, zero, zero], axis=1)


def adjust_photometry(image, u, cfg: AugmentConfig, xp):
    """Brightness and contrast of an NHWC float image batch from uniforms ``u`` [B, 7] (columns 5, 6)."""
    b = ((2.0 * u[:, 5] - 1.0) * cfg.brightness)[:, None, None, None]
    c = (1.0 + (2.0 * u[:, 6] - 1.0) * cfg.contrast)[:, None, None, None]
    mean = xp.mean(image, axis=(1, 2, 3), keepdims=True)
    return xp.clip((image - mean) * c + mean + b, 0.0, 1.0)
