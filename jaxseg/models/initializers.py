"""Weight initialisation schemes named in the thesis's parameter tables (Tables 5-6).

* ``torch_default`` — PyTorch's default for ``nn.Conv2d``: kaiming-uniform with
  a = sqrt(5), i.e. U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(fan_in).
  In variance-scaling form: scale = 1/3, mode = fan_in, uniform
  (the uniform limit is sqrt(3 * scale / fan_in)).
* ``he_normal`` — He et al. 2015: N(0, 2/fan) truncated-free normal, fan = fan_in or
  fan_out (Table 6 "weight initialisation fan mode").
* ``glorot_uniform`` / ``lecun_normal`` — flax defaults, for completeness.

Biases start at zero in every scheme (PyTorch draws them from U(-b, b); the
difference is immaterial for training and keeps init independent of fan_in).
"""

from __future__ import annotations

import jax

SCHEMES = ("torch_default", "he_normal", "glorot_uniform", "lecun_normal")


def kernel_init(scheme: str = "he_normal", fan_mode: str = "fan_in"):
    """Returns a flax kernel initializer for ``scheme`` (see module docstring)."""
    if fan_mode not in ("fan_in", "fan_out"):
        raise ValueError(f"fan_mode must be 'fan_in' or 'fan_out', got {fan_mode!r}")
    if scheme == "torch_default":
        return jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    if scheme == "he_normal":
        return jax.nn.initializers.variance_scaling(2.0, fan_mode, "normal")
    if scheme == "glorot_uniform":
        return jax.nn.initializers.glorot_uniform()
    if scheme == "lecun_normal":
        return jax.nn.initializers.lecun_normal()
    raise ValueError(f"unknown weight init scheme {scheme!r}; available: {', '.join(SCHEMES)}")
