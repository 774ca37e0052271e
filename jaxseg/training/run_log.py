"""Run logs: ``metrics.jsonl``, TensorBoard scalar event files (no TensorFlow), progress bars.

Progress bars: ``tqdm`` when it is installed, else a silent stand-in with the
same methods. tqdm is a dependency of jaxseg, but the GPU benchmark
(bench/gpu.sh) runs on machines that have only jax, flax, optax, orbax and chex;
the trainer must import there too.

TensorBoard reads TFRecord files of ``Event`` protocol buffers. We write the
few fields scalars need by hand (Event: wall_time=1 double, step=2 int64,
file_version=3 string, summary=5; Summary.value=1; Value: tag=1, simple_value=2
float) framed as TFRecords: uint64 length, masked CRC32C of the length, data,
masked CRC32C of the data (CRC32C = Castagnoli, reflected polynomial 0x82F63B78;
mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 mod 2^32).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Mapping

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - exercised on bare benchmark machines
    class tqdm:  # noqa: N801  (the name callers use)
        """The parts of tqdm jaxseg uses, doing nothing but iterate and write."""

        def __init__(self, iterable=None, *args, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable if self.iterable is not None else ())

        def update(self, n=1):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            pass

        @staticmethod
        def write(message, file=None):
            print(message, file=file or sys.stdout)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, *, file_version: str | None = None,
           scalars: Mapping[str, float] | None = None) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(v)))
            for tag, v in scalars.items())
        msg += _field_bytes(5, summary)
    return msg


def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def event_step(data: bytes) -> int:
    """Field 2 (``step``, varint) of a serialised ``Event``; 0 if absent."""
    i = 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _read_varint(data, i)
            if field == 2:
                return value
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = _read_varint(data, i)
            i += n
        elif wire == 5:
            i += 4
        else:
            break
    return 0


def read_records(path: str | os.PathLike) -> list[bytes]:
    """The intact TFRecords of an event file (a record cut by a crash, or with a bad CRC, ends the list)."""
    buf = Path(path).read_bytes()
    out, i = [], 0
    while i + 12 <= len(buf):
        (n,) = struct.unpack("<Q", buf[i:i + 8])
        end = i + 12 + n + 4
        if end > len(buf) or struct.unpack("<I", buf[i + 8:i + 12])[0] != _masked_crc(buf[i:i + 8]):
            break
        data = buf[i + 12:i + 12 + n]
        if struct.unpack("<I", buf[end - 4:end])[0] != _masked_crc(data):
            break
        out.append(data)
        i = end
    return out


def truncate_events(logdir: str | os.PathLike, keep_through_step: int) -> None:
    """Drops, from every event file in ``logdir``, the events of steps after ``keep_through_step``.

    A run resumed from the checkpoint of step S would otherwise show the steps a crash
    lost twice in TensorBoard; ``metrics.jsonl`` is cut the same way (``MetricsLog``).
    """
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        records = read_records(path)
        kept = [r for r in records if event_step(r) <= keep_through_step]
        if len(kept) == len(records) and path.stat().st_size == sum(len(r) + 16 for r in records):
            continue  # nothing to drop, nothing cut
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(b"".join(_record(r) for r in kept))
        os.replace(tmp, path)


_WRITERS = itertools.count()  # a writer's own file, even for two opened in the same second


class TensorBoardWriter:
    """Appends scalar summaries to ``logdir/events.out.tfevents.<time>.<host>.<pid>.<n>``.

    ``keep_through_step=S`` (a resumed run) first drops the events after step S from the
    event files already in ``logdir``.
    """

    def __init__(self, logdir: str | os.PathLike, keep_through_step: int | None = None):
        Path(logdir).mkdir(parents=True, exist_ok=True)
        if keep_through_step is not None:
            truncate_events(logdir, keep_through_step)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(_WRITERS)}"
        self.path = Path(logdir) / name
        self._f = open(self.path, "ab")
        self._f.write(_record(_event(0, time.time(), file_version="brain.Event:2")))
        self._f.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
        self._f.write(_record(_event(step, time.time(), scalars=finite)))
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class MetricsLog:
    """``metrics.jsonl``: one JSON object per evaluation.

    On resume from a checkpoint after epoch ``k``, records of later epochs (written
    before a crash but not covered by a checkpoint) are dropped, so the file always
    matches the run that continues.
    """

    def __init__(self, path: str | os.PathLike, keep_through_epoch: int):
        self.path = Path(path)
        kept = [r for r in self.read(self.path) if r.get("epoch", 0) <= keep_through_epoch]
        with open(self.path, "w") as f:
            for r in kept:
                f.write(json.dumps(r) + "\n")

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict]:
        path = Path(path)
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a crash mid-write
                    break
        return records

    def write(self, record: Mapping) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(dict(record)) + "\n")
