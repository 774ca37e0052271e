"""The one exception type our data loaders raise for bad input: ``DataError``.

Every unreadable, truncated or inconsistent file (a corrupt PNG, an image and
mask of different sizes, a mask with values other than {0,1}/{0,255}, a missing
mask, a duplicate name, an unreadable slide, a missing dataset folder) is
reported as a ``DataError`` whose message starts with the offending path, so a
user can fix or remove that one file. Loaders never skip silently: where a
``skip_bad_files`` option exists, skipped files are collected and listed.
"""

from __future__ import annotations

import os


class DataError(Exception):
    """Bad or missing input data; ``path`` names the file or folder at fault."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):  # picklable, so it crosses tf.data / multiprocessing boundaries intact
        return (DataError, (self.path, self.message))
