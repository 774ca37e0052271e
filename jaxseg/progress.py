"""Progress bars: ``tqdm`` when it is installed, else a silent stand-in with the same methods.

tqdm is a dependency of jaxseg, but the GPU benchmark (bench/gpu.sh) runs on machines
that have only jax, flax, optax, orbax and chex; the trainer must import there too.
"""

from __future__ import annotations

import sys

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - exercised on bare benchmark machines
    class tqdm:  # noqa: N801  (the name callers use)
        """The parts of tqdm jaxseg uses, doing nothing but iterate and write."""

        def __init__(self, iterable=None, *args, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable if self.iterable is not None else ())

        def update(self, n=1):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            pass

        @staticmethod
        def write(message, file=None):
            print(message, file=file or sys.stdout)

__all__ = ["tqdm"]
