"""Small shared fixtures for tests: a tiny config and a record comparison."""

from __future__ import annotations

import ml_collections

from configs import default as default_config


def tiny_config(**train) -> ml_collections.ConfigDict:
    """The smoke variant of configs/default.py, shrunk further for tests."""
    c = default_config.get_config("smoke")
    c.data.num_train, c.data.num_val = 16, 12
    c.model.features, c.model.depth = 4, 2
    c.train.progress = False
    c.train.batch_size = 8
    for k, v in train.items():
        c.train[k] = v
    return c


def comparable(record: dict) -> dict:
    """A metrics record without wall-clock fields."""
    return {k: v for k, v in record.items() if not k.startswith("time/")}


def write_dicom(path, pixels, *, slope=None, intercept=None, window=None, photometric="MONOCHROME2",
                voi_lut=None, signed=False):
    """A single-frame 16-bit DICOM file; ``window`` = (centre, width); ``voi_lut`` = (first, 16-bit table)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PhotometricInterpretation = "CT", photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        first, table = voi_lut
        item = Dataset()
        item.add_new(0x00283002, "US", [len(table), first, 16])  # LUT Descriptor
        item.add_new(0x00283006, "US", [int(v) for v in table])  # LUT Data
        ds.VOILUTSequence = Sequence([item])
    ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def assert_shape_error(case, fn, name, *arrays) -> str:
    """``fn(*arrays)`` raises ValueError starting '<name>:' and naming every shape given (``case``: a
    unittest/chex TestCase); returns the message."""
    import re

    import numpy as np

    with case.assertRaises(ValueError) as cm:
        fn(*arrays)
    msg = str(cm.exception)
    case.assertTrue(msg.startswith(f"{name}:"), msg)
    for a in arrays:
        case.assertRegex(msg, re.escape(str(tuple(np.shape(a)))))
    return msg
