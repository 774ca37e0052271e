"""TensorFlow feeds input pipelines only: keep it off the accelerators JAX needs."""

from __future__ import annotations


def hide_accelerators_from_tensorflow() -> None:
    """Imports TensorFlow and makes it see no GPU (a no-op once TF has initialised its devices)."""
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TF already initialised its devices: too late, and not ours to change
        pass
