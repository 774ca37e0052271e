"""Streaming from shards (jaxseg.data.streaming, jaxseg.data.shards): the same batches as in memory, exact
resume without reading what is skipped, cache keys, and ``python -m jaxseg.prepare``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxseg.data import get_source, shards, streaming
from jaxseg.errors import ConfigError
from tests.helpers import tiny_config

REPO = Path(__file__).resolve().parent.parent
SIZE = 32


def _synthetic(cache, in_memory, **data):
    c = tiny_config()
    c.data.num_train, c.data.num_val = 40, 12  # 5 steps of 8, the last validation batch padded
    c.data.cache_dir = str(cache)
    c.data.in_memory = in_memory
    c.data.update(data)
    return c


def _make_folder(root, n=14, bad=()):
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    for i in range(n):
        rng = np.random.default_rng(i)
        img = rng.integers(0, 256, (SIZE + 8, SIZE + 8), dtype=np.uint8)  # resized to SIZE on read
        mask = np.zeros((SIZE + 8, SIZE + 8), np.uint8)
        mask[4:4 + 2 * (i % 5), i:i + 12] = 255
        Image.fromarray(img).save(os.path.join(root, "images", f"case{i:02d}.png"))
        if i in bad:
            with open(os.path.join(root, "masks", f"case{i:02d}.png"), "wb") as f:
                f.write(b"not a png")
        else:
            Image.fromarray(mask).save(os.path.join(root, "masks", f"case{i:02d}.png"))
    return root


def _folder(root, cache, in_memory, **data):
    c = tiny_config()
    c.data.update(dict(name="folder", root=str(root), image_size=SIZE, val_fraction=0.25, cache_dir=str(cache),
                       in_memory=in_memory, **data))
    c.train.batch_size = 4
    return c


def _assert_same(a_batches, b_batches):
    a_batches, b_batches = list(a_batches), list(b_batches)
    assert len(a_batches) == len(b_batches) > 0
    for a, b in zip(a_batches, b_batches):
        assert sorted(a) == sorted(b)
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("augment", [{}, dict(augment=True, augment_on="host", flips="both", rotation_limit=20.0,
                                              brightness=0.1)], ids=["plain", "host-augment"])
@pytest.mark.parametrize("process", [(0, 1), (1, 2)], ids=["one-process", "process-1-of-2"])
def test_synthetic_streaming_equals_in_memory(tmp_path, augment, process):
    memory = get_source(_synthetic(tmp_path, True, **augment), *process)
    stream = get_source(_synthetic(tmp_path, False, **augment), *process)
    assert isinstance(stream, streaming.StreamingSource) and not isinstance(memory, streaming.StreamingSource)
    assert (stream.steps_per_epoch, stream.image_shape, stream.mask_channels) == \
        (memory.steps_per_epoch, memory.image_shape, memory.mask_channels)
    for epoch in (0, 1):
        _assert_same(memory.train_batches(epoch), stream.train_batches(epoch))
    _assert_same(memory.eval_batches(), stream.eval_batches())
    stream.reader.records_read = 0
    list(stream.train_batches(0))  # a process reads only its rows (host augmentation: the global batch)
    whole = bool(augment) and process[1] > 1
    assert stream.reader.records_read == stream.steps_per_epoch * stream.batch_size // (1 if whole else process[1])


def test_resume_seeks_without_reading_the_skipped_batches(tmp_path):
    src = get_source(_synthetic(tmp_path, False))
    steps, bs = src.steps_per_epoch, src.batch_size
    full = list(src.train_batches(1))
    src.reader.records_read = 0
    resumed = list(src.train_batches(1, start_step=3))
    assert src.reader.records_read == (steps - 3) * bs  # steps 0-2 never read
    _assert_same(full[3:], resumed)
    assert list(src.train_batches(1, start_step=steps)) == []
    with pytest.raises(ValueError, match="start_step"):
        next(src.train_batches(1, start_step=steps + 1))


def test_folder_streaming_equals_in_memory_with_skipped_files_and_folds(tmp_path, caplog):
    root = _make_folder(str(tmp_path / "ds"), bad=(5,))
    for data in (dict(skip_bad_files=True), dict(skip_bad_files=True, num_folds=3, fold=1)):
        memory = get_source(_folder(root, tmp_path / "cache", True, **data))
        stream = get_source(_folder(root, tmp_path / "cache", False, **data))
        assert (stream.num_train, stream.num_val) == (memory.num_train, memory.num_val)
        for epoch in (0, 1):
            _assert_same(memory.train_batches(epoch), stream.train_batches(epoch))
        _assert_same(memory.eval_batches(), stream.eval_batches())
    assert len(os.listdir(tmp_path / "cache" / "shards")) == 1  # the split is no key: folds share the shards
    assert "case05" in caplog.text  # the skipped file is listed at every load


def test_cache_key_follows_files_and_shaping_parameters(tmp_path, capsys):
    root = _make_folder(str(tmp_path / "ds"), n=8)
    config = _folder(root, tmp_path / "cache", False)
    first, built = streaming.prepare(config)
    assert built and first.count == 8
    again, built = streaming.prepare(config)
    assert not built and again.folder == first.folder
    capsys.readouterr()

    config.data.image_size = 16  # a shaping parameter: new shards, and the reason on stderr
    smaller, built = streaming.prepare(config)
    assert built and smaller.folder != first.folder and smaller.shapes()["image"] == (16, 16, 1)
    assert "parameters changed: image_size 32 -> 16" in capsys.readouterr().err

    config.data.image_size = SIZE
    path = os.path.join(root, "masks", "case03.png")
    Image.fromarray(np.full((SIZE + 8, SIZE + 8), 255, np.uint8)).save(path)  # a changed source file
    changed, built = streaming.prepare(config)
    assert built and changed.folder not in (first.folder, smaller.folder)
    assert "files modified (first: masks/case03.png)" in capsys.readouterr().err
    assert changed.read([3])["mask"].all() and not first.read([3])["mask"].all()

    config.data.val_fraction, config.seed = 0.5, 3  # choosing examples is no key
    same, built = streaming.prepare(config)
    assert not built and same.folder == changed.folder
    assert not [n for n in os.listdir(tmp_path / "cache" / "shards") if "incomplete" in n]


def test_damaged_or_unfinished_shards_are_not_read(tmp_path):
    src = get_source(_synthetic(tmp_path, False))
    folder = src.reader.folder
    with open(src.reader.paths[0], "ab") as f:
        f.write(b"x")
    with pytest.raises(Exception, match="damaged"):
        shards.ShardReader(folder)
    os.remove(os.path.join(folder, shards.INDEX))
    assert shards.read_index(folder) is None
    _, built = streaming.prepare(_synthetic(tmp_path, False))  # an unfinished build is built again
    assert built


def test_in_memory_setting_and_auto_budget(tmp_path, capsys):
    assert streaming.storage(_synthetic(tmp_path, "auto")) == "memory"
    assert streaming.storage(_synthetic(tmp_path, "auto", memory_budget_gb=1e-6)) == "streaming"
    assert "over config.data.memory_budget_gb=1e-06: streaming" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="in_memory='sometimes'"):
        streaming.storage(_synthetic(tmp_path, "sometimes"))


def _prepare_cli(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "jaxseg.prepare", f"--config={REPO}/configs/default.py:smoke",
                             "--progress=false", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_prepare_command_builds_then_reuses_and_reports_mistakes(tmp_path):
    root = _make_folder(str(tmp_path / "ds"), n=6)
    mistakes = [(_prepare_cli(*bad, cwd=tmp_path), code, message) for bad, code, message in (
        (["--config.data.name=nope"], 2, "config.data.name='nope' is not a dataset"),
        (["--config.data.name=folder", f"--config.data.root={tmp_path / 'missing'}"], 3, "dataset folder not found"))]
    args = ["--config.data.name=folder", f"--config.data.root={root}", f"--config.data.cache_dir={tmp_path / 'c'}"]
    out = _finish(_prepare_cli(*args, cwd=tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("prepared ") and "(6 examples, 1 shard(s)" in out.stdout
    out = _finish(_prepare_cli(*args, cwd=tmp_path))
    assert out.returncode == 0 and out.stdout.startswith("up to date: "), out.stderr[-3000:]
    for proc, code, message in mistakes:
        out = _finish(proc)
        errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
        assert out.returncode == code and "Traceback" not in out.stderr, out.stderr[-3000:]
        assert len(errors) == 1 and message in errors[0], out.stderr[-3000:]
