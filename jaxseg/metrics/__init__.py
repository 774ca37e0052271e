"""Metrics of thesis §5.1: array functions and the trainer's streaming collection."""

from jaxseg.metrics.collection import Metric, MetricCollection, available
from jaxseg.metrics.confusion import confusion_counts, dice_score, jaccard_score

__all__ = ["Metric", "MetricCollection", "available", "confusion_counts", "dice_score",
           "jaccard_score"]
