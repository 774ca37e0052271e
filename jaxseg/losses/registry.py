"""The loss registry: ``@LOSSES.register(name)`` on a ``fn(logits, labels, **params) -> scalar``.

``logits``, ``labels``, ``dist`` and ``pixel_weight`` (filled from the batch) are
inputs, never config parameters; every other keyword is a parameter
``config.loss`` may set.
"""

from jaxseg.registry import Registry

LOSSES = Registry("loss", inputs=("logits", "labels", "dist", "pixel_weight"))
