"""jaxseg: 2D medical image segmentation in JAX/Flax.

Importing jaxseg changes nothing process-wide. The layers (docs/architecture.md):

  ops, models, losses, metrics   arrays in, arrays out; jax/flax/numpy/scipy only
  data                           datasets and input pipelines (the only TensorFlow user)
  analysis                       tools that are not training (submodularity checks)
  training                       state, steps, the epoch loop, trials, checkpoints, run logs
  inference, reporting           prediction, inspection, tables and figures of trained runs
  cli                            the commands; the only place that exits or configures the process

``jaxseg.runtime.configure_process()`` applies the commands' process settings
(faster XLA:CPU kernels, TensorFlow kept off GPUs) for a library user.
"""

__version__ = "0.1.0"
