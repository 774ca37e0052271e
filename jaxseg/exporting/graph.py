"""The function an export writes: images → probabilities, for one run or the mean of trials.

``inference_function(model)`` gives ``f(params, images)`` for a ``Predictor`` or an
``Ensemble`` (``jaxseg.inference.ensemble``) and its ``params`` (one variables
tree per member). Each member computes what ``jaxseg.predict`` computes for a
batch — ``probabilities(model.apply(variables, images, train=False), mode)``,
the one rule of ``jaxseg.losses.regional`` (sigmoid for binary and multilabel,
softmax for multiclass), BatchNorm with its running statistics, dropout off —
and an ensemble returns the mean of its members' probabilities.

``images`` are what ``jaxseg.predict`` feeds the model: float32 (N, S, S, C) in
[0, 1] (8-bit values / 255, DICOM through its LUTs: ``jaxseg.inference.inputs``),
S = ``config.data.image_size``; nothing else is normalised. The batch may be
symbolic (``jax.export.symbolic_shape``): ``probabilities`` checks a concrete
NHWC shape, so it is applied per image under ``jax.vmap``, which computes the
same numbers.

``staged(f, params, spec)`` is ``f`` as plain lax primitives for converters that
work primitive by primitive (jax2onnx): the function is traced once to a jaxpr,
calls into ``jit`` and ``custom_jvp`` functions are inlined, and max pooling
(``reduce_window_max``) is re-expressed as the maximum of strided slices —
exact, and an ONNX graph every runtime runs (jax2onnx 0.17 writes an NHWC
window as a 4-D MaxPool, which onnxruntime refuses, and its patch of
``flax.linen.max_pool`` rejects a positional window size).
"""

from __future__ import annotations

import itertools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.inference.ensemble import Ensemble
from jaxseg.losses.regional import probabilities


def members_of(model) -> list:
    """The predictors of a ``Predictor`` (itself) or an ``Ensemble`` (its members)."""
    return list(model.members) if isinstance(model, Ensemble) else [model]


def member_probabilities(module, variables, images, mode: str):
    """One member's probabilities (N, S, S, C) for ``images`` (N, S, S, C_in): ``jaxseg.predict``'s rule."""
    logits = module.apply(variables, images, train=False)
    return jax.vmap(lambda z: probabilities(z[None], mode=mode)[0])(logits)


def inference_function(model) -> tuple[Callable, list]:
    """``(f, params)``: ``f(params, images) -> probabilities``, the mean over the members when several."""
    members = members_of(model)
    specs = [(m.model, m.mode) for m in members]

    def f(params, images):
        total = None
        for (module, mode), variables in zip(specs, params):
            p = member_probabilities(module, variables, images, mode)
            total = p if total is None else total + p
        return total if len(specs) == 1 else total / len(specs)

    return f, [m.variables for m in members]


def input_spec(size: int, channels: int, batch: int | None) -> jax.ShapeDtypeStruct:
    """float32 (batch, size, size, channels); ``batch=None``: a symbolic batch ``N``."""
    n = jax.export.symbolic_shape("N")[0] if batch is None else int(batch)
    return jax.ShapeDtypeStruct((n, size, size, channels), jnp.float32)


def _pad_with_minus_inf(x, padding):
    """``x`` padded with −inf blocks (concatenation: no Pad op over a symbolic batch)."""
    for axis, (lo, hi) in enumerate(padding):
        if not (lo or hi):
            continue
        edge = [jnp.minimum(lax.slice_in_dim(x, 0, 1, axis=axis), -jnp.inf)]
        x = jnp.concatenate(edge * lo + [x] + edge * hi, axis=axis)
    return x


def max_pool_slices(x, window_dimensions, window_strides, padding, base_dilation, window_dilation):
    """``lax.reduce_window_max`` as the maximum of the window's strided slices; None if dilated input."""
    if any(d != 1 for d in base_dilation):
        return None
    x = _pad_with_minus_inf(x, padding)
    out = None
    for offset in itertools.product(*(range(w) for w in window_dimensions)):
        start, limit = [], []
        for axis, (o, w, s, dil) in enumerate(zip(offset, window_dimensions, window_strides, window_dilation)):
            n = x.shape[axis]
            if w == 1 and s == 1:
                start.append(0)
                limit.append(n)
                continue
            count = (n - (w - 1) * dil - 1) // s + 1
            start.append(o * dil)
            limit.append(o * dil + (count - 1) * s + 1)
        piece = lax.slice(x, start, limit, window_strides)
        out = piece if out is None else jnp.maximum(out, piece)
    return out


def _evaluate(closed, *args) -> list:
    """Evaluates a closed jaxpr with ``jit``/``custom_jvp`` calls inlined and max pooling as slices."""
    from jax.extend.core import DropVar, Literal

    env = dict(zip(closed.jaxpr.constvars, closed.consts))
    env.update(zip(closed.jaxpr.invars, args))
    read = lambda v: v.val if isinstance(v, Literal) else env[v]  # noqa: E731
    for eqn in closed.jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name, outs = eqn.primitive.name, None
        if name == "reduce_window_max":
            pooled = max_pool_slices(invals[0], **eqn.params)
            outs = None if pooled is None else [pooled]
        elif name in ("jit", "pjit", "closed_call"):
            outs = _evaluate(eqn.params["jaxpr"], *invals)
        elif name == "custom_jvp_call":  # inference needs the function, not its custom derivative
            outs = _evaluate(eqn.params["call_jaxpr"], *invals)
        if outs is None:
            params = eqn.primitive.get_bind_params(eqn.params)
            subfuns, params = params if isinstance(params, tuple) else ((), params)  # jax < 0.8 returned a pair
            outs = eqn.primitive.bind(*subfuns, *invals, **params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for v, x in zip(eqn.outvars, outs):
            if not isinstance(v, DropVar):
                env[v] = x
    return [read(v) for v in closed.jaxpr.outvars]


def staged(f: Callable, params, spec: jax.ShapeDtypeStruct) -> Callable:
    """``images -> f(params, images)`` re-emitted from its jaxpr as plain lax primitives (see above)."""
    closed = jax.make_jaxpr(lambda images: f(params, images))(spec)
    return lambda images: _evaluate(closed, images)[0]
