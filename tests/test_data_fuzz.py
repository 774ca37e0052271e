"""Random bytes into every decoder: only ``DataError`` (naming the file) may come out."""

import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxseg.data import io
from jaxseg.data.sources import histopathology
from jaxseg.errors import DataError

PREFIXES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"BM"]


def _valid_files():
    import io as pyio

    import numpy as np
    import tifffile
    from PIL import Image

    img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    out = []
    for fmt in ("PNG", "JPEG"):
        buf = pyio.BytesIO()
        Image.fromarray(img).save(buf, fmt)
        out.append(buf.getvalue())
    buf = pyio.BytesIO()
    tifffile.imwrite(buf, np.stack([img] * 3, -1), tile=(16, 16), compression="zlib")
    out.append(buf.getvalue())
    return out


VALID = _valid_files()


def _mutate(data, cut, flips):
    data = bytearray(data[: max(1, cut % (len(data) + 1))])
    for pos, value in flips:
        data[pos % len(data)] = value
    return bytes(data)


random_blobs = st.builds(lambda p, rest: p + rest, st.sampled_from(PREFIXES), st.binary(max_size=300))
mutated_files = st.builds(_mutate, st.sampled_from(VALID), st.integers(0, 10_000),
                          st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
blobs = st.one_of(random_blobs, mutated_files)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(blobs, st.sampled_from([1, 3]))
def test_decode_image(data, channels):
    try:
        img = io.decode_image(data, "fuzz.png", channels)
    except DataError as e:
        assert e.path == "fuzz.png"
    else:
        assert img.dtype.name == "uint8"


@SETTINGS
@given(blobs, st.sampled_from([None, 3]))
def test_decode_mask(data, num_classes):
    try:
        mask = io.decode_mask(data, "fuzz_mask.png", num_classes)
    except DataError as e:
        assert e.path == "fuzz_mask.png"
    else:
        assert mask.ndim == 2


def _as_file(data):
    fd, path = tempfile.mkstemp(suffix=".tif")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("reader", ["slide", "label"])
@SETTINGS
@given(data=blobs)
def test_slide_and_label_readers(reader, data):
    path = _as_file(data)
    try:
        if reader == "slide":
            histopathology.open_slide(path).close()
        else:
            label = histopathology.LabelImage(path)
            label.read(0, min(4, label.height), 0, min(4, label.width))
            label.close()
    except DataError as e:
        assert e.path == path
    finally:
        os.remove(path)
