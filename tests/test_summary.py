"""metrics.jsonl and the hand-written TensorBoard event files."""

import json

import numpy as np
import pytest

from jaxseg.training.run_log import MetricsLog, TensorBoardWriter, crc32c


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert crc32c(b"") == 0


def test_event_file_reads_back_with_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    w = TensorBoardWriter(tmp_path)
    w.scalars(7, {"train/loss": 0.25, "val/dice": 0.75, "note": "skipped"})
    w.scalars(8, {"train/loss": 0.125})
    w.close()
    events = list(tf.compat.v1.train.summary_iterator(str(w.path)))  # verifies the CRCs
    assert events[0].file_version == "brain.Event:2"
    got = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
    assert got == [(7, "train/loss", 0.25), (7, "val/dice", 0.75), (8, "train/loss", 0.125)]


def test_metrics_log_keeps_records_up_to_the_resumed_epoch(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"epoch": e, "x": e * 1.5}) + "\n" for e in (1, 2, 3)) + '{"epo')
    log = MetricsLog(path, keep_through_epoch=2)
    log.write({"epoch": 3, "x": np.float32(9.0).item()})
    assert [r["epoch"] for r in MetricsLog.read(path)] == [1, 2, 3]
    assert MetricsLog.read(path)[-1]["x"] == 9.0


def _steps_and_tags(tf, logdir):
    files = sorted(logdir.glob("events.out.tfevents.*"))
    return [(e.step, v.tag) for f in files for e in tf.compat.v1.train.summary_iterator(str(f))
            for v in e.summary.value]


def test_resumed_writer_drops_events_after_the_checkpoint_step(tmp_path):
    """A crash after step 20's events but before its checkpoint: the resumed run (from step 10)
    must not show steps 20 and 30 twice; the cut file stays readable by TensorFlow."""
    tf = pytest.importorskip("tensorflow")
    w = TensorBoardWriter(tmp_path)
    for step in (10, 20, 30):
        w.scalars(step, {"val/dice": step / 100})
    w.close()
    with open(w.path, "ab") as f:  # a record cut mid-write by the crash
        f.write(b"\x05\x00\x00")
    resumed = TensorBoardWriter(tmp_path, keep_through_step=10)
    for step in (20, 30):
        resumed.scalars(step, {"val/dice": step / 100 + 0.01})
    resumed.close()
    got = _steps_and_tags(tf, tmp_path)
    assert sorted(got) == [(10, "val/dice"), (20, "val/dice"), (30, "val/dice")]


def test_writer_without_resume_leaves_existing_files_alone(tmp_path):
    w = TensorBoardWriter(tmp_path)
    w.scalars(5, {"a": 1.0})
    w.close()
    before = w.path.read_bytes()
    TensorBoardWriter(tmp_path, keep_through_step=5).close()
    assert w.path.read_bytes() == before
