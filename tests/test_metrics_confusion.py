"""Confusion-family metrics against NumPy formulas, empty rules, multi-class averages."""

import chex
import numpy as np
import pytest

from jaxseg.metrics import confusion

FORMULAS = {
    "dice": lambda tp, fp, fn, tn: 2 * tp / (2 * tp + fp + fn),
    "jaccard": lambda tp, fp, fn, tn: tp / (tp + fp + fn),
    "precision": lambda tp, fp, fn, tn: tp / (tp + fp),
    "recall": lambda tp, fp, fn, tn: tp / (tp + fn),
    "specificity": lambda tp, fp, fn, tn: tn / (tn + fp),
    "balanced_accuracy": lambda tp, fp, fn, tn: 0.5 * (tp / (tp + fn) + tn / (tn + fp)),
}


def _data(c=1):
    rng = np.random.default_rng(0)
    return (rng.random((5, 6, 7, c)).astype(np.float32),
            (rng.random((5, 6, 7, c)) < 0.4).astype(np.float32))


def test_counts_match_numpy_and_respect_valid():
    p, y = _data(c=2)
    valid = np.array([True, True, False, True, False])
    got = np.stack([np.asarray(v) for v in confusion.confusion_counts(p, y, 0.3, valid, "multilabel")], -1)
    pred, lab = p > 0.3, y > 0.5
    ref = np.stack([(pred & lab).sum((1, 2)), (pred & ~lab).sum((1, 2)),
                    (~pred & lab).sum((1, 2)), (~pred & ~lab).sum((1, 2))], -1) * valid[:, None, None]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_scores_match_formulas(name):
    p, y = _data()
    counts = np.stack([np.asarray(v) for v in confusion.confusion_counts(p, y)], -1)[:, 0]
    got = np.asarray(confusion.SCORES[name](*counts.T.astype(np.float64)))
    chex.assert_trees_all_close(got, FORMULAS[name](*counts.T.astype(np.float64)).astype(np.float32),
                                rtol=1e-6)


@pytest.mark.parametrize("name,both_empty,pred_only,label_only", [
    ("dice", 1, 0, 0), ("jaccard", 1, 0, 0), ("precision", 1, 0, 0), ("recall", 1, 0, 0)])
def test_empty_rule(name, both_empty, pred_only, label_only):
    # (TP, FP, FN, TN) of: both empty, only the prediction non-empty, only the label non-empty
    tp, fp, fn, tn = (np.array(v, np.float32) for v in ([0, 0, 0], [0, 5, 0], [0, 0, 5], [9, 4, 4]))
    got = np.asarray(confusion.SCORES[name](tp, fp, fn, tn))
    np.testing.assert_array_equal(got, [both_empty, pred_only, label_only])


def test_specificity_full_label_rule():
    # label covers the image: TN + FP = 0; prediction full → 1, else 0
    got = np.asarray(confusion.specificity_score(np.array([9., 5.]), np.zeros(2), np.array([0., 4.]),
                                                 np.zeros(2)))
    np.testing.assert_array_equal(got, [1.0, 0.0])


def test_macro_micro_none():
    p, y = _data(c=3)
    counts = np.stack([np.asarray(v) for v in confusion.confusion_counts(p, y, mode="multilabel")],
                      -1).sum(0)  # (C, 4)
    per = FORMULAS["dice"](*counts.T.astype(np.float64))
    micro = FORMULAS["dice"](*counts.sum(0).astype(np.float64))
    support = counts[:, 0] + counts[:, 2]
    weighted = np.sum(per * support) / support.sum()
    for avg, ref in (("none", per), ("macro", per.mean()), ("micro", micro), ("weighted", weighted)):
        got = np.asarray(confusion.average_scores(confusion.dice_score, counts, avg))
        chex.assert_trees_all_close(got, np.asarray(ref, np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match="average"):
        confusion.average_scores(confusion.dice_score, counts, "bogus")
