"""The chest X-ray tasks as class masks, from a lung mask and an infection mask (infection ⊂ lung;
where an annotation strays outside the lung, the infection wins: lung := lung ∪ infection).

Shared by the synthetic phantoms and COVID-QU-Ex, whose infection data carry both masks:

  task                  mode        channels
  infection             binary      infection
  lung                  binary      lung
  lung_infection        multiclass  background (outside the lungs) / lung without infection / infection
  lung_and_infection    multilabel  lung (infection included) / infection — overlapping
"""

from __future__ import annotations

import numpy as np

CLASSES = {"infection": 1, "lung": 1, "lung_infection": 3, "lung_and_infection": 2}
MODES = {"infection": "binary", "lung": "binary", "lung_infection": "multiclass",
         "lung_and_infection": "multilabel"}


def class_masks(task: str, lung: np.ndarray, infection: np.ndarray) -> np.ndarray:
    """uint8 {0,1} masks (..., C) of ``task`` from lung and infection masks of shape (...) (any nonzero = in)."""
    if task not in CLASSES:
        raise ValueError(f"unknown task {task!r}; available: {', '.join(CLASSES)}")
    lung, infection = np.asarray(lung).astype(bool), np.asarray(infection).astype(bool)
    chest = lung | infection  # an infection pixel an annotator drew past the lung edge is still infection
    channels = {"infection": [infection], "lung": [lung],
                "lung_infection": [~chest, chest & ~infection, infection],
                "lung_and_infection": [chest, infection]}[task]
    return np.stack(channels, axis=-1).astype(np.uint8)
