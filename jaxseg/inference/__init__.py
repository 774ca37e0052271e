"""Inference with trained runs: restore a workdir's model, predict image files (``predict``)."""
