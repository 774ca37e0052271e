"""The trainer's streaming collection: specs, registry errors, streaming = one shot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import metrics
from jaxseg.metrics import surface
from jaxseg.metrics.spec import parse_spec

SPECS = ["dice", "jaccard", "balanced_accuracy", "precision", "recall", "specificity",
         "dice(per_image=True)", "roc_auc(mantissa_bits=10,octaves=12)",
         "average_precision(mantissa_bits=10, octaves=12)", "hausdorff95(on=boundary)",
         "average_hausdorff(normalize=True)", "balanced_average_hausdorff", "mahd",
         "dice(average=none)", "hausdorff(average=none, include_background=False)"]


def test_parse_spec():
    assert parse_spec("dice") == ("dice", {}, "dice")
    assert parse_spec("hausdorff95(on=boundary, spacing=(0.5, 2))") == (
        "hausdorff95", {"on": "boundary", "spacing": (0.5, 2)}, "hausdorff95(on=boundary,spacing=(0.5,2))")
    assert parse_spec({"name": "hausdorff", "percentile": 99, "key": "hd99"}) == (
        "hausdorff", {"percentile": 99}, "hd99")
    for bad in ("dice(", "dice(0.5)", "a.b", {"on": "x"}):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_unknown_names_and_params_list_what_is_available():
    with pytest.raises(ValueError, match="available: .*average_precision.*roc_auc"):
        metrics.MetricCollection(["dice", "dcie"])
    with pytest.raises(ValueError, match="allowed"):
        metrics.MetricCollection(["hausdorff(p=3)"])
    with pytest.raises(ValueError):
        metrics.MetricCollection(["dice(smooth=1)"])
    with pytest.raises(ValueError, match="twice"):
        metrics.MetricCollection(["dice", "dice"])
    assert {"dice", "roc_auc", "hausdorff95", "mahd", "modified_average_hausdorff"} <= set(metrics.available())
    assert not metrics.higher_is_better("hausdorff95(on=boundary)") and metrics.higher_is_better("dice")


def test_metrics_on_the_same_statistics_share_one_state():
    col = metrics.MetricCollection(["dice", "jaccard", "recall", "roc_auc", "average_precision",
                                    "dice(threshold=0.3)", "hausdorff95"])
    assert sorted(col.init()) == ["dice", "dice(threshold=0.3)", "hausdorff95", "roc_auc"]


def _batch(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, 10, 10, c)).astype(np.float32)
    labels = (rng.random((n, 10, 10, c)) < 0.3).astype(np.float32)
    probs = np.asarray(jax.nn.sigmoid(logits) if c == 1 else jax.nn.softmax(logits, -1))
    return probs, labels


MULTICLASS_SPECS = ["dice(average=micro)", "roc_auc(mantissa_bits=10,octaves=12,average=none)",
                    "hausdorff95(on=boundary)", "dice(average=none)",
                    "hausdorff(average=none, include_background=False)"]


@pytest.mark.parametrize("c,specs", [(1, SPECS), (2, MULTICLASS_SPECS)])
def test_streaming_with_padding_equals_one_shot(c, specs):
    col = metrics.MetricCollection(specs, threshold=0.4, num_classes=c)
    probs, labels = _batch(6, c, seed=c)
    update = jax.jit(col.update)
    one = col.compute(update(col.init(), probs, labels, jnp.ones(6, bool)))
    # the same images as batches of 4: the last one padded with two junk images
    pad_p = np.concatenate([probs[4:], np.ones_like(probs[:2])])
    pad_y = np.concatenate([labels[4:], np.zeros_like(labels[:2])])
    acc = update(col.init(), probs[:4], labels[:4], jnp.ones(4, bool))
    acc = update(acc, pad_p, pad_y, jnp.array([True, True, False, False]))
    streamed = col.compute(acc)
    assert streamed.keys() == one.keys()
    for k in one:
        np.testing.assert_allclose(streamed[k], one[k], rtol=1e-5, err_msg=k)
    assert all(np.isfinite(v) for v in one.values())
    # values are the library functions' values, on the masks of the one prediction rule
    # (C = 2 defaults to multiclass mode: the argmax, not probs > 0.4)
    dice_ref = metrics.dice_score(*(v.sum(0) for v in metrics.confusion_counts(probs, labels, 0.4)))
    np.testing.assert_allclose(one["dice(average=none)/0"], np.asarray(dice_ref)[0], rtol=1e-6)
    hd95 = jax.jit(lambda p, y: surface.hausdorff95(p, y, on="boundary"))
    hd = hd95(metrics.predict_masks(probs, None, 0.4), labels > 0.5)
    np.testing.assert_allclose(one["hausdorff95(on=boundary)"], np.asarray(hd).mean(), rtol=1e-5)
    per_class_keys = [k for k in one if k.startswith("hausdorff(")]
    assert per_class_keys == (["hausdorff(average=none,include_background=False)/1"] if c == 2
                              else ["hausdorff(average=none,include_background=False)/0"])


def test_channel_mismatch_is_an_error():
    col = metrics.MetricCollection(["dice"], num_classes=2)
    probs, labels = _batch(2, 1, seed=0)
    with pytest.raises(ValueError, match="num_classes"):
        col.update(col.init(), probs, labels, jnp.ones(2, bool))
