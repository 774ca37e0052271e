"""Array operations shared by losses and metrics (pure JAX, jit-able)."""

from jaxseg.ops.edt import euclidean_distance_transform

__all__ = ["euclidean_distance_transform"]
