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
