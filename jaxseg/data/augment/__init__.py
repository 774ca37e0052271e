"""Training augmentation: the affine maths once (``affine``), applied by tf.data (``host``) or on device (``device``).

``config.data.augment_on`` picks the path ('device', the default, runs inside the
jitted train step); both draw the same transforms from the same formulas.
"""

from jaxseg.data.augment.affine import AugmentConfig

__all__ = ["AugmentConfig"]
