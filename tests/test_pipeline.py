import numpy as np
import pytest

from jaxseg.data.pipeline import ArraySource, epoch_permutation


def _source(n_train=20, n_val=7, bs=4, **kw):
    x = np.arange(n_train, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 1), np.float32)
    v = np.arange(n_val, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 1), np.float32)
    return ArraySource(dict(image=x, mask=x), dict(image=v, mask=v), bs, seed=5, **kw)


def test_epoch_order_is_a_seeded_permutation():
    src = _source()
    ids = [b["image"][:, 0, 0, 0].astype(int) for b in src.train_batches(0)]
    assert len(ids) == src.steps_per_epoch == 5
    flat = np.concatenate(ids)
    np.testing.assert_array_equal(np.sort(flat), np.arange(20))
    np.testing.assert_array_equal(flat, epoch_permutation(20, 5, 0))
    again = np.concatenate([b["image"][:, 0, 0, 0].astype(int) for b in src.train_batches(0)])
    np.testing.assert_array_equal(flat, again)
    other = np.concatenate([b["image"][:, 0, 0, 0].astype(int) for b in src.train_batches(1)])
    assert not np.array_equal(flat, other)


def test_eval_batches_are_padded_and_marked():
    src = _source()
    batches = list(src.eval_batches())
    assert len(batches) == src.eval_steps == 2
    assert batches[-1]["image"].shape[0] == 4
    np.testing.assert_array_equal(batches[-1]["valid"], [True, True, True, False])
    seen = np.concatenate([b["image"][b["valid"], 0, 0, 0] for b in batches])
    np.testing.assert_array_equal(seen, np.arange(7))


def test_process_shards_split_each_global_batch():
    parts = [list(_source(process_index=i, process_count=2).train_batches(0)) for i in range(2)]
    whole = list(_source().train_batches(0))
    for b0, b1, b in zip(*parts, whole):
        np.testing.assert_array_equal(np.concatenate([b0["image"], b1["image"]]), b["image"])


def test_too_few_examples_is_an_error():
    with pytest.raises(ValueError, match="fewer than one batch"):
        _source(n_train=3, bs=4)
