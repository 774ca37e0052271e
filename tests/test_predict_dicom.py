"""DICOM inputs are read as a radiologist sees them: modality LUT, then VOI (window or LUT), MONOCHROME1 inverted.

The expected values come from DICOM PS3.3 C.11.2.1.2 written out in NumPy, not from pydicom.
"""

import numpy as np
import pytest

from jaxseg.errors import DataError
from jaxseg.inference import inputs
from tests.helpers import write_dicom

pydicom = pytest.importorskip("pydicom")


def linear_window(x, centre, width):
    """PS3.3 C.11.2.1.2.1 (LINEAR) to [0, 1]: ((x − (c − ½)) / (w − 1) + ½), clipped."""
    c, w = centre - 0.5, width - 1.0
    y = (x - c) / w + 0.5
    return np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, y))


# CT-like values: stored 0..2000, HU = stored - 1024 (about -1024..976)
STORED = np.linspace(0, 2000, 12 * 10).round().reshape(12, 10).astype(np.int64)
HU = STORED - 1024.0


def test_window_centre_width_after_rescale(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", STORED, slope=1, intercept=-1024, window=(40, 400))
    img = inputs.read_input(path)
    assert img.shape == (12, 10, 1) and img.dtype == np.float32
    np.testing.assert_allclose(img[..., 0], linear_window(HU, 40, 400), atol=1e-6)
    assert (img == 0).any() and (img == 1).any()  # the window clips air and bone: not a min-max stretch


def test_a_window_wider_than_the_image_is_not_stretched(tmp_path):
    pixels = np.full((6, 6), 1000)
    pixels[:3] = 1100  # two values inside a wide window: they stay mid-grey, not 0 and 1
    path = write_dicom(tmp_path / "flat.dcm", pixels, slope=1, intercept=-1024, window=(0, 2000))
    img = inputs.read_input(path)[..., 0]
    np.testing.assert_allclose(img, linear_window(pixels - 1024.0, 0, 2000), atol=1e-6)
    assert 0.4 < img.min() < img.max() < 0.6


def test_monochrome1_is_inverted_after_windowing(tmp_path):
    path = write_dicom(tmp_path / "m1.dcm", STORED, slope=1, intercept=-1024, window=(40, 400),
                       photometric="MONOCHROME1")
    np.testing.assert_allclose(inputs.read_input(path)[..., 0], 1 - linear_window(HU, 40, 400), atol=1e-6)


def test_without_window_tags_min_max_of_the_modality_values(tmp_path):
    path = write_dicom(tmp_path / "raw.dcm", STORED, slope=2, intercept=-100)
    expected = (STORED * 2 - 100 - (STORED * 2 - 100).min()) / np.ptp(STORED * 2 - 100)
    np.testing.assert_allclose(inputs.read_input(path)[..., 0], expected, atol=1e-6)
    m1 = write_dicom(tmp_path / "raw1.dcm", STORED, photometric="MONOCHROME1")
    np.testing.assert_allclose(inputs.read_input(m1)[..., 0], 1 - STORED / STORED.max(), atol=1e-6)


def test_voi_lut_sequence_is_applied_and_scaled_by_its_table(tmp_path):
    # stored 500..1500 -> 2000..12000; below and above: the first and last entries
    first, table = 500, np.linspace(2000, 12000, 1001).round().astype(np.uint16)
    path = write_dicom(tmp_path / "lut.dcm", STORED, voi_lut=(first, table))
    looked_up = table[np.clip(STORED - first, 0, len(table) - 1)].astype(np.float64)
    np.testing.assert_allclose(inputs.read_input(path)[..., 0], (looked_up - 2000) / 10000, atol=1e-6)


def test_three_channel_models_get_the_grey_image_repeated(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", STORED, slope=1, intercept=-1024, window=(40, 400))
    img = inputs.read_input(path, channels=3)
    assert img.shape == (12, 10, 3)
    np.testing.assert_allclose(img, np.repeat(linear_window(HU, 40, 400)[..., None], 3, -1), atol=1e-6)


def test_unreadable_dicom_names_the_file(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM but not really")
    with pytest.raises(DataError, match="bad.dcm"):
        inputs.read_input(bad)
