"""Shared test set-up: quiet TF/absl logs, float32 JAX on one CPU device.

Multi-device tests run in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=N (see test_parallel.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
