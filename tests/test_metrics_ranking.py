"""ROC AUC and AP from streamed histograms against scikit-learn."""

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from sklearn.metrics import average_precision_score, roc_auc_score

from jaxseg.metrics import ranking

COARSE = ranking.Quantizer(mantissa_bits=5, octaves=6)
SMALL = ranking.Quantizer(mantissa_bits=8, octaves=25)  # exact on k/128 grids and 1 - 2^-24


def _data(seed=0, n=4, c=1, grid=None):
    rng = np.random.default_rng(seed)
    y = rng.random((n, 8, 8, c)) < 0.3
    logit = np.where(y, rng.normal(1.0, 2.5, y.shape), rng.normal(-1.0, 2.5, y.shape))
    s = (1 / (1 + np.exp(-logit))).astype(np.float32)
    if grid:  # a score grid: many ties, every value exactly representable by the keys
        s = np.round(s * grid).astype(np.float32) / grid
    s.flat[:4] = [0.0, 0.5, 1.0, 1.0 - 2.0 ** -24]
    return s, y.astype(np.float32)


def _sk(y, s):
    return roc_auc_score(y.ravel(), s.ravel()), average_precision_score(y.ravel(), s.ravel())


def test_equals_sklearn_on_scores_with_ties():
    s, y = _data(grid=64)
    auc, ap = _sk(y, s)
    assert abs(ranking.roc_auc(s, y, quantizer=SMALL) - auc) < 1e-9
    assert abs(ranking.average_precision(s, y, quantizer=SMALL) - ap) < 1e-9


def test_default_resolution_within_1e6_of_sklearn_on_raw_float32():
    s, y = _data(seed=1)
    auc, ap = _sk(y, s)
    assert abs(ranking.roc_auc(s, y) - auc) < 1e-6
    assert abs(ranking.average_precision(s, y) - ap) < 1e-6


def test_coarse_quantizer_exact_on_keys_and_within_certified_bound():
    s, y = _data(seed=2)
    keys = np.asarray(COARSE.keys(s))
    hist = np.asarray(ranking.score_histogram(s, y, quantizer=COARSE))
    auc = float(ranking.roc_auc_from_histogram(hist)[0])
    ap = float(ranking.average_precision_from_histogram(hist)[0])
    k_auc, k_ap = _sk(y, keys)
    assert abs(auc - k_auc) < 1e-9 and abs(ap - k_ap) < 1e-9
    raw_auc, raw_ap = _sk(y, s)
    b_auc, b_ap = (float(b[0]) for b in ranking.error_bounds(hist))
    assert 0 < abs(auc - raw_auc) <= b_auc and 0 < abs(ap - raw_ap) <= b_ap  # coarse: inexact, bounded


def test_keys_monotone_and_in_range():
    rng = np.random.default_rng(3)
    s = np.sort(np.concatenate([rng.random(5000), rng.random(500) * 1e-6, 1 - rng.random(500) * 1e-6,
                                [0.0, 1e-40, 2.0 ** -26, 0.5, np.nextafter(0.5, 0), 1.0]]).astype(np.float32))
    for q in (ranking.Quantizer(), COARSE):
        k = np.asarray(q.keys(s))
        assert k.dtype == np.int32 and np.all(np.diff(k) >= 0)
        assert k.min() >= 0 and k.max() < q.num_bins


def test_streaming_with_padding_equals_one_shot():
    s, y = _data(seed=4, n=6)
    one = ranking.score_histogram(s, y, quantizer=SMALL)
    pad_s = np.concatenate([s[4:], np.full_like(s[:2], 0.3)])
    pad_y = np.concatenate([y[4:], np.ones_like(y[:2])])
    streamed = (ranking.score_histogram(s[:4], y[:4], quantizer=SMALL)
                + ranking.score_histogram(pad_s, pad_y, np.array([True, True, False, False]), SMALL))
    np.testing.assert_array_equal(np.asarray(streamed), np.asarray(one))
    assert np.asarray(one).dtype == np.int32 and np.asarray(one).sum() == s.size


def test_multiclass_macro_micro_none():
    s, y = _data(seed=5, c=3, grid=128)
    ys, ss = y.reshape(-1, 3), s.reshape(-1, 3)
    for avg in ("macro", "micro"):
        auc = ranking.roc_auc(s, y, average=avg, quantizer=SMALL)
        ap = ranking.average_precision(s, y, average=avg, quantizer=SMALL)
        assert abs(auc - roc_auc_score(ys, ss, average=avg)) < 1e-9
        assert abs(ap - average_precision_score(ys, ss, average=avg)) < 1e-9
    per = ranking.roc_auc(s, y, average="none", quantizer=SMALL)
    np.testing.assert_allclose(per, roc_auc_score(ys, ss, average=None), atol=1e-9)


@pytest.mark.parametrize("label,auc,ap", [(0.0, 0.5, 0.0), (1.0, 0.5, 1.0)])
def test_single_class_sets_are_finite(label, auc, ap):
    s = np.random.default_rng(6).random((2, 4, 4, 1)).astype(np.float32)
    y = np.full_like(s, label)
    assert ranking.roc_auc(s, y, quantizer=SMALL) == auc
    assert ranking.average_precision(s, y, quantizer=SMALL) == ap


def test_histogram_jits():
    s, y = _data(seed=7)
    h = jax.jit(ranking.score_histogram, static_argnums=3)(s, y, None, COARSE)
    assert h.shape == (1, COARSE.num_bins, 2)


_keys = jax.jit(lambda s: ranking.Quantizer().keys(s))


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, 64, elements=st.floats(0, 1, width=32)))
def test_keys_monotone_property(s):
    s = np.sort(s)
    k = np.asarray(_keys(s))
    assert np.all(np.diff(k) >= 0)
    assert np.all((np.diff(k) > 0) | (np.diff(s) < 2e-5))  # distinct beyond the resolution
