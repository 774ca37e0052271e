"""Metric specifications: a name, optionally with parameters, as a string or a dict.

Grammar (a Python call with keyword arguments; bare words are strings):

  "dice"
  "dice(average=none)"                    per-class values: keys dice(average=none)/0, /1, …
  "hausdorff95(on=boundary, normalize=True)"
  "roc_auc(mantissa_bits=20)"
  {"name": "hausdorff", "percentile": 99, "key": "hd99"}

The metric's key in ``compute()``'s output (and in metrics.jsonl as
``val/<key>``) is the spec string without spaces, or a dict's ``key`` (default:
the canonical ``name(k=v,…)``).
"""

from __future__ import annotations

import ast
from typing import Any, Mapping, NamedTuple


class MetricSpec(NamedTuple):
    name: str
    params: dict[str, Any]
    key: str


def _value(node: ast.expr, spec: str):
    if isinstance(node, ast.Name):
        return node.id
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"metric spec {spec!r}: cannot read value {ast.unparse(node)!r}") from None


def _canonical(name: str, params: Mapping[str, Any]) -> str:
    if not params:
        return name
    return f"{name}({','.join(f'{k}={v}' for k, v in params.items())})".replace(" ", "")


def parse_spec(spec: str | Mapping[str, Any]) -> MetricSpec:
    """``"name(k=v, …)"`` or ``{"name": …, "key": …, k: v}`` → MetricSpec(name, params, key)."""
    if isinstance(spec, Mapping):
        params = dict(spec)
        if "name" not in params:
            raise ValueError(f"metric spec {spec!r} has no 'name'")
        name = str(params.pop("name"))
        key = params.pop("key", None)
        return MetricSpec(name, params, str(key) if key else _canonical(name, params))
    if not isinstance(spec, str):
        raise ValueError(f"metric spec must be a string or a dict; got {spec!r}")
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"metric spec {spec!r} is not 'name' or 'name(key=value, ...)'") from None
    if isinstance(node, ast.Name):
        return MetricSpec(node.id, {}, node.id)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args
            and all(k.arg for k in node.keywords)):
        params = {k.arg: _value(k.value, spec) for k in node.keywords}
        return MetricSpec(node.func.id, params, "".join(spec.split()))
    raise ValueError(f"metric spec {spec!r} is not 'name' or 'name(key=value, ...)'")
