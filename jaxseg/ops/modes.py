"""Segmentation modes (segmentation_models_pytorch's names), checked once for losses, metrics and configs.

  'binary'      C = 1, a sigmoid
  'multiclass'  C ≥ 2 softmax channels, one class per pixel (background = class 0)
  'multilabel'  C ≥ 1 independent sigmoids, classes may overlap

``default_mode(C)`` ('binary' for one channel, 'multiclass' otherwise) is what a
function given no mode assumes; ``check_mode`` refuses a mode that does not fit C.
"""

from __future__ import annotations

MODES = ("binary", "multiclass", "multilabel")


def default_mode(num_classes: int) -> str:
    """'binary' for one channel, 'multiclass' (softmax, argmax) for more."""
    return "binary" if int(num_classes) == 1 else "multiclass"


def check_mode(mode: str | None, num_classes: int) -> str:
    """``mode`` (or the default for ``num_classes`` when None); ValueError when the two disagree.

    binary needs C = 1, multiclass C ≥ 2, multilabel C ≥ 1.
    """
    c = int(num_classes)
    if c < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    if mode is None:
        return default_mode(c)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "binary" and c != 1:
        raise ValueError(f"mode='binary' has one channel but num_classes={c}: use mode='multiclass' "
                         "(softmax, one class per pixel) or 'multilabel' (overlapping classes)")
    if mode == "multiclass" and c < 2:
        raise ValueError(f"mode='multiclass' needs num_classes >= 2 (background included); got {c}")
    return mode
