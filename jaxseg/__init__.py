"""jaxseg: 2D medical image segmentation in JAX/Flax.

Library layers (``jaxseg.models``, ``jaxseg.losses``, ``jaxseg.metrics``) import
only jax/flax/numpy/scipy; TensorFlow is used inside ``jaxseg.data`` alone.
"""

__version__ = "0.1.0"
