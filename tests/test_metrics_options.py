"""Averages and multiclass options with scikit-learn's names, against scikit-learn, in all three modes.

average='macro'|'micro'|'weighted'|'samples' of f1 (Dice) and Jaccard, ROC AUC one-vs-rest
and one-vs-one (Hand & Till), AP, balanced accuracy (multiclass: ``balanced_accuracy_score``).
Scores lie on a k/64 grid, where the streamed histograms are exact (ties included), so the
histogram-based values agree with scikit-learn to 1e-9; per-image ('samples') ranking is
float32 on device (1e-5).
"""

import itertools

import jax
import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, f1_score, jaccard_score,
                             roc_auc_score)

from jaxseg import metrics
from jaxseg.metrics import confusion, ranking

Q = "mantissa_bits=8,octaves=25"  # exact on k/64 grids
N, H, W = 4, 8, 8


def make_data(mode, seed=0, c=3):
    """(scores, masks) (N, H, W, C) on a k/64 grid: softmax-like one-hot data for multiclass
    (probabilities summing exactly to 1), independent channels for binary/multilabel."""
    rng = np.random.default_rng(seed)
    if mode == "binary":
        c = 1
    if mode == "multiclass":
        prior = np.arange(c, 0, -1) ** 2 / np.sum(np.arange(c, 0, -1) ** 2)  # imbalanced: weighted ≠ macro
        y = np.eye(c, dtype=bool)[rng.choice(c, (N, H, W), p=prior)]
        logits = rng.normal(0, 1, y.shape) + 1.2 * y
        p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        a = np.floor(p * 64).astype(int)
        np.put_along_axis(a, p.argmax(-1)[..., None],
                          np.take_along_axis(a, p.argmax(-1)[..., None], -1) + 64 - a.sum(-1, keepdims=True), -1)
        s = a / 64
    else:
        y = rng.random((N, H, W, c)) < np.linspace(0.15, 0.5, c)
        s = np.round(64 / (1 + np.exp(-(rng.normal(0, 1.5, y.shape) + 1.5 * (2 * y - 1))))) / 64
    return s.astype(np.float32), y.astype(np.float32)


def sklearn_predictions(mode, s):
    if mode == "multiclass":
        return np.eye(s.shape[-1], dtype=bool)[s.argmax(-1)]
    return s > 0.5


def _collect(specs, mode, s, y, c):
    col = metrics.MetricCollection(specs, num_classes=c, mode=mode)
    return col.compute(jax.jit(col.update)(col.init(), s, y, np.ones(len(s), bool)))


CONFUSION_SPECS = [f"{m}(average={a})" for m in ("dice", "jaccard") for a in ("macro", "micro", "weighted", "samples")]
RANKING_SPECS = [f"{m}({Q},average={a})" for m in ("roc_auc", "average_precision")
                 for a in ("macro", "micro", "weighted", "samples")]


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_averages_match_sklearn(mode):
    s, y = make_data(mode, seed=1)
    c = s.shape[-1]
    specs = CONFUSION_SPECS + RANKING_SPECS + ["balanced_accuracy"]
    if mode == "multiclass":
        specs += [f"roc_auc({Q},multi_class=ovo)", f"roc_auc({Q},multi_class=ovo,average=weighted)",
                  "dice(average=weighted,include_background=False)"]
    got = _collect(specs, mode, s, y, c)
    p = sklearn_predictions(mode, s)
    ys, ps, ss = (a.reshape(-1, c) for a in (y > 0.5, p, s))  # pixels × classes (indicators)
    per_image = [a.reshape(N, -1) for a in (y > 0.5, p, s)]  # images × (pixels·classes)
    lab, pred = ys.argmax(-1), ps.argmax(-1)  # multiclass labels
    for name, fn in (("dice", f1_score), ("jaccard", jaccard_score)):
        for avg in ("macro", "micro", "weighted"):
            if mode == "multiclass":
                ref = fn(lab, pred, average=avg, labels=range(c))
            elif mode == "binary":  # one class: every average is the positive class's score
                ref = fn(ys.ravel(), ps.ravel())
            else:
                ref = fn(ys, ps, average=avg, zero_division=1)
            assert got[f"{name}(average={avg})"] == pytest.approx(ref, abs=1e-6), (name, avg)
        ref = fn(per_image[0], per_image[1], average="samples", zero_division=1)
        assert got[f"{name}(average=samples)"] == pytest.approx(ref, abs=1e-6), name
    for avg in ("macro", "micro", "weighted"):
        if mode == "binary":
            ys, ss = ys.ravel(), ss.ravel()
        auc = (roc_auc_score(lab, ss, multi_class="ovr", average=avg) if mode == "multiclass"
               else roc_auc_score(ys, ss, average=avg))
        assert got[f"roc_auc({Q},average={avg})"] == pytest.approx(auc, abs=1e-9), avg
        ap = average_precision_score(ys, ss, average=avg)
        assert got[f"average_precision({Q},average={avg})"] == pytest.approx(ap, abs=1e-9), avg
    assert got[f"roc_auc({Q},average=samples)"] == pytest.approx(
        roc_auc_score(per_image[0], per_image[2], average="samples"), abs=1e-5)
    assert got[f"average_precision({Q},average=samples)"] == pytest.approx(
        average_precision_score(per_image[0], per_image[2], average="samples"), abs=1e-5)
    if mode == "multiclass":
        assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(lab, pred), abs=1e-6)
        for avg in ("macro", "weighted"):
            assert got[f"roc_auc({Q},multi_class=ovo" + (",average=weighted)" if avg == "weighted" else ")")] \
                == pytest.approx(roc_auc_score(lab, ss, multi_class="ovo", average=avg), abs=1e-9)
        assert got["dice(average=weighted,include_background=False)"] == pytest.approx(
            f1_score(lab, pred, labels=[1, 2], average="weighted"), abs=1e-6)
    else:  # one-vs-rest per channel, macro over channels
        ys = ys.reshape(-1, c)
        ref = np.mean([balanced_accuracy_score(ys[:, k], ps[:, k]) for k in range(c)])
        assert got["balanced_accuracy"] == pytest.approx(ref, abs=1e-6)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_multiclass_balanced_accuracy_skips_classes_absent_from_the_ground_truth():
    s, y = make_data("multiclass", seed=2, c=4)
    lab = y.argmax(-1)
    y = np.eye(4, dtype=np.float32)[np.where(lab == 3, 1, lab)]  # class 3 is never true, yet predicted
    got = _collect(["balanced_accuracy", "balanced_accuracy(average=samples)", "recall(average=none)"],
                   "multiclass", s, y, 4)
    lab, pred = y.argmax(-1), s.argmax(-1)
    assert (pred == 3).any() and not (lab == 3).any()
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(lab.ravel(), pred.ravel()),
                                                     abs=1e-6)
    per_image = np.mean([balanced_accuracy_score(lab[i].ravel(), pred[i].ravel()) for i in range(N)])
    assert got["balanced_accuracy(average=samples)"] == pytest.approx(per_image, abs=1e-6)
    assert got["recall(average=none)/3"] == 0.0  # one-vs-rest recall keeps the empty rule


def test_ovo_without_background_is_the_pairs_of_foreground_classes():
    s, y = make_data("multiclass", seed=3, c=4)
    got = _collect([f"roc_auc({Q},multi_class=ovo,include_background=False)"], "multiclass", s, y, 4)
    lab, ss = y.reshape(-1, 4).argmax(-1), s.reshape(-1, 4)
    pairs = []
    for a, b in itertools.combinations(range(1, 4), 2):
        m = (lab == a) | (lab == b)
        pairs.append(0.5 * (roc_auc_score(lab[m] == a, ss[m, a]) + roc_auc_score(lab[m] == b, ss[m, b])))
    assert got[f"roc_auc({Q},multi_class=ovo,include_background=False)"] == pytest.approx(np.mean(pairs), abs=1e-9)


def test_array_functions_take_the_same_options():
    s, y = make_data("multiclass", seed=4)
    lab, ss = y.reshape(-1, 3).argmax(-1), s.reshape(-1, 3)
    small = ranking.Quantizer(8, 25)
    assert ranking.roc_auc(s, y, quantizer=small, multi_class="ovo", average="weighted") == pytest.approx(
        roc_auc_score(lab, ss, multi_class="ovo", average="weighted"), abs=1e-9)
    assert ranking.roc_auc(s, y, quantizer=small, average="weighted") == pytest.approx(
        roc_auc_score(lab, ss, multi_class="ovr", average="weighted"), abs=1e-9)
    assert ranking.average_precision(s, y, average="samples") == pytest.approx(
        average_precision_score(y.reshape(N, -1), s.reshape(N, -1), average="samples"), abs=1e-5)
    counts = np.stack([np.asarray(v) for v in confusion.confusion_counts(s, y)], -1)  # argmax: C > 1
    pred = s.reshape(-1, 3).argmax(-1)
    assert float(confusion.multiclass_balanced_accuracy(counts.sum(0))) == pytest.approx(
        balanced_accuracy_score(lab, pred), abs=1e-6)
    assert float(confusion.average_scores(confusion.dice_score, counts, "samples")) == pytest.approx(
        f1_score(y.reshape(N, -1), np.eye(3)[s.argmax(-1)].reshape(N, -1), average="samples"), abs=1e-6)


def test_weighted_without_any_ground_truth_is_the_macro_mean():
    counts = np.array([[0, 3, 0, 9], [0, 0, 0, 12]], np.int32)  # (C, 4): no ground-truth pixel at all
    assert float(confusion.average_scores(confusion.dice_score, counts, "weighted")) == 0.5
    hist = np.zeros((2, 4, 2), np.int32)
    hist[:, 1, 0] = 5  # negatives only
    assert ranking.reduce_classes(ranking.average_precision_from_histogram, hist, "weighted") == 0.0
    assert ranking.reduce_classes(ranking.roc_auc_from_histogram, hist, "weighted") == 0.5


@pytest.mark.parametrize("spec,num_classes,mode,match", [
    ("roc_auc(multi_class=ovo)", 12, "multiclass", "MiB.*mantissa_bits"),
    ("average_precision(multi_class=ovo)", 3, "multiclass", "roc_auc only"),
    ("roc_auc(multi_class=ovo)", 3, "multilabel", "mode='multiclass'"),
    ("roc_auc(multi_class=ovo,average=micro)", 3, "multiclass", "average"),
    ("roc_auc(multi_class=ovr2)", 3, "multiclass", "multi_class"),
    ("dice(per_image=True,average=samples)", 1, "binary", "already per image"),
    ("balanced_accuracy(average=micro)", 3, "multiclass", "balanced_accuracy_score"),
    ("dice(average=mean)", 1, "binary", "average"),
    ("hausdorff(average=weighted)", 1, "binary", "average"),
])
def test_unusable_options_are_refused_when_built(spec, num_classes, mode, match):
    with pytest.raises(ValueError, match=match):
        metrics.MetricCollection([spec], num_classes=num_classes, mode=mode)


def test_ovo_memory_is_stated_and_small_classes_fit():
    q = ranking.Quantizer()
    assert ranking.pair_histogram_bytes(3, q) == 9 * q.num_bins * 4 < ranking.MAX_PAIR_HISTOGRAM_BYTES
    metrics.MetricCollection(["roc_auc(multi_class=ovo)"], num_classes=9, mode="multiclass")  # 9 classes: ~1 GiB
    with pytest.raises(ValueError, match="MiB"):
        metrics.MetricCollection(["roc_auc(multi_class=ovo)"], num_classes=10, mode="multiclass")
    metrics.MetricCollection(["roc_auc(multi_class=ovo,mantissa_bits=10)"], num_classes=40, mode="multiclass")
