"""Metrics of thesis §5.1: array functions and the trainer's streaming collection.

Modules: ``modes`` (the one prediction rule, :func:`predict_masks`, for the
'binary', 'multiclass' and 'multilabel' modes; ignored pixels), ``confusion``
(TP/FP/FN/TN scores), ``ranking`` (ROC AUC, AP), ``surface`` (Hausdorff
family), ``percentile_distance`` (the MAHD's exact per-pixel distance
percentiles), ``spec`` (metric spec strings), ``collection`` (streaming
accumulation for the trainer).

Every array function takes NHWC arrays as the rest of the library: probabilities
and masks (N, H, W, C), one channel per class, ``valid`` (N,), ``pixel_weight``
(N, H, W, 1) (0: an ignored pixel, counted in no metric); per-image results are
(N, C). A wrong shape (no channel axis, NCHW, (N, 1) against (N,)) raises
``ValueError`` naming the function and both shapes, jitted or not.
"""

from jaxseg.metrics.collection import (Metric, MetricCollection, available, build_metric,
                                       higher_is_better)
from jaxseg.metrics.confusion import (SCORES, average_scores, balanced_accuracy_score,
                                      confusion_counts, dice_score, jaccard_score,
                                      multiclass_balanced_accuracy, precision_score, recall_score,
                                      specificity_score)
from jaxseg.metrics.modes import MODES, check_mode, default_mode, predict_masks
from jaxseg.metrics.ranking import (Quantizer, average_precision, image_scores, pair_histogram,
                                    roc_auc, score_histogram)
from jaxseg.metrics.spec import MetricSpec, parse_spec
from jaxseg.metrics.surface import (average_hausdorff, balanced_average_hausdorff, boundary,
                                    hausdorff, hausdorff95, modified_average_hausdorff)

__all__ = [
    "MODES", "Metric", "MetricCollection", "MetricSpec", "Quantizer", "SCORES", "available",
    "average_hausdorff", "average_precision", "average_scores", "balanced_accuracy_score",
    "balanced_average_hausdorff", "boundary", "build_metric", "check_mode", "confusion_counts",
    "default_mode", "dice_score", "hausdorff", "hausdorff95", "higher_is_better", "image_scores",
    "jaccard_score", "modified_average_hausdorff", "multiclass_balanced_accuracy", "pair_histogram",
    "parse_spec", "precision_score", "predict_masks", "recall_score", "roc_auc", "score_histogram",
    "specificity_score",
]
