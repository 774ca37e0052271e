"""Writing the inference function as an ONNX file or a TensorFlow SavedModel, and running what was written.

ONNX (``write_onnx``): jax2onnx converts the staged function (``graph.staged``:
lax primitives only) into one graph with the weights as initializers; input
``images``, output ``probabilities``; the batch axis is the symbolic ``N`` unless
fixed. The export contract (input range, mode, threshold, members) is stored in
the model's ``metadata_props`` under ``jaxseg.*``. jax2tf + tf2onnx cannot do this
any more: jax2tf (jax ≥ 0.7) serialises only StableHLO inside one ``XlaCallModule``
op, which tf2onnx 1.17 refuses ("pass1 convert failed ... XlaCallModule").

SavedModel (``write_savedmodel``): ``jax.experimental.jax2tf`` with native
serialisation, lowered for CPU and CUDA; the members' weights are
``tf.Variable``s (the SavedModel's variables/), ``predict(images)`` returns the
probabilities and the ``serving_default`` signature maps ``images`` to
``{"probabilities": ...}``; ``jaxseg_export.json`` beside ``saved_model.pb``
holds the contract. Running it needs TensorFlow ≥ 2.15 (XlaCallModule version 9).

Both are written to a temporary name beside ``output`` and moved into place
when complete, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxseg.errors import JaxsegError
from jaxseg.exporting import graph

# jax2onnx (0.15–0.17) pins orbax-checkpoint<0.11.37; without its dependencies it runs our export and
# leaves the training stack's orbax as it is (tests/test_export.py passes either way)
INSTALL = 'pip install -e ".[export]" && pip install --no-deps "jax2onnx==0.17.1"'
NEEDS = {"onnx": ("jax2onnx", "onnx", "onnxruntime"), "savedmodel": ("tensorflow",)}
PLATFORMS = ("cpu", "cuda")  # the SavedModel's lowerings
CONTRACT_FILE = "jaxseg_export.json"


def require(fmt: str) -> None:
    """Raises ``JaxsegError`` with the one ``pip install`` line when a package ``fmt`` needs is missing."""
    missing = []
    for name in NEEDS[fmt]:
        try:  # found, not imported: TensorFlow is imported (off the GPUs) only to write a SavedModel
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (tests)
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise JaxsegError(f"--format={fmt} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                          f"not installed: {INSTALL}")


@contextlib.contextmanager
def _quiet(*loggers: str):
    """jax2onnx logs each optional plugin it cannot import (equinox, dm_pix examples), onnx_ir untyped shapes."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def _partial_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.partial")


def _move_into_place(tmp: Path, output: Path) -> None:
    if output.is_dir():
        shutil.rmtree(output)
    os.replace(tmp, output)


def check_output(output: Path, fmt: str) -> None:
    """Refuses an output that would overwrite something other than an earlier export of ``fmt``."""
    if not output.exists():
        if not output.parent.is_dir():
            raise JaxsegError(f"--output={output}: the folder {output.parent} does not exist")
        return
    if fmt == "onnx" and output.is_dir():
        raise JaxsegError(f"--output={output} is a folder; give the .onnx file to write")
    foreign = output.is_file() or (any(output.iterdir()) and not (output / "saved_model.pb").exists())
    if fmt == "savedmodel" and foreign:
        raise JaxsegError(f"--output={output} exists and is not a SavedModel; give a new folder for the SavedModel")


def write_onnx(f: Callable, params, spec: jax.ShapeDtypeStruct, output: Path, contract: dict,
               opset: int) -> Path:
    import onnx
    from jax2onnx import to_onnx

    with _quiet("jax2onnx", "onnx_ir"):
        proto = to_onnx(graph.staged(f, params, spec), [spec], model_name="jaxseg", opset=opset,
                        input_names=["images"], output_names=["probabilities"])
    for key, value in contract.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"jaxseg.{key}", value if isinstance(value, str) else json.dumps(value)
    tmp = _partial_path(output)
    onnx.save(proto, str(tmp))
    _move_into_place(tmp, output)
    return output


def _tensorflow():
    """TensorFlow, imported only for a SavedModel (4–5 s) and kept off the GPUs JAX uses."""
    from jaxseg.data.tf_devices import hide_accelerators_from_tensorflow

    hide_accelerators_from_tensorflow()
    import tensorflow as tf

    return tf


def write_savedmodel(f: Callable, params, spec: jax.ShapeDtypeStruct, output: Path, contract: dict) -> Path:
    tf = _tensorflow()  # before jax2tf, which imports TensorFlow too
    from jax.experimental import jax2tf

    dynamic = not isinstance(spec.shape[0], int)
    shape = [None if dynamic else spec.shape[0], *spec.shape[1:]]
    converted = jax2tf.convert(f, polymorphic_shapes=[None, "(b, ...)"] if dynamic else None,
                               native_serialization_platforms=PLATFORMS)
    param_vars = tf.nest.map_structure(lambda x: tf.Variable(np.asarray(x), trainable=False), params)
    module = tf.Module()
    module._variables = tf.nest.flatten(param_vars)  # tracked, so saved as the SavedModel's variables
    signature = [tf.TensorSpec(shape, tf.float32, name="images")]
    module.predict = tf.function(lambda images: converted(param_vars, images), autograph=False,
                                 input_signature=signature)
    serving = tf.function(lambda images: {"probabilities": module.predict(images)}, autograph=False,
                          input_signature=signature)
    tmp = _partial_path(output)
    shutil.rmtree(tmp, ignore_errors=True)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": serving})
    (tmp / CONTRACT_FILE).write_text(json.dumps(contract, indent=2) + "\n")
    _move_into_place(tmp, output)
    return output


def run_onnx(path: str | Path, images: np.ndarray) -> np.ndarray:
    """The probabilities an ONNX export gives for ``images`` (onnxruntime, CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"images": np.asarray(images, np.float32)})[0]


def run_savedmodel(path: str | Path, images: np.ndarray) -> np.ndarray:
    """The probabilities a SavedModel export gives for ``images`` (TensorFlow)."""
    tf = _tensorflow()

    loaded = tf.saved_model.load(str(path))  # held: its functions reference the variables it owns
    return loaded.predict(tf.constant(np.asarray(images, np.float32))).numpy()


RUNNERS = {"onnx": run_onnx, "savedmodel": run_savedmodel}
