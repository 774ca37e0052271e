"""The exceptions jaxseg raises for problems a user can fix, and the exit code the CLI gives each.

Library code raises these and never exits; ``jaxseg.cli`` turns any of them
into one line ``error: <message>`` on stderr and the class's ``exit_code``,
with no traceback. Messages name the file, key or value at fault and, where
there is one, the fix.

  JaxsegError       base class (exit 1): workdirs, checkpoints, inputs, reports
  ConfigError       a config that cannot run (exit 2); lists every problem found
  DataError         bad or missing input data (exit 3); ``path`` names the file or folder
  NonFiniteError    a NaN/Inf loss or gradient under ``train.nonfinite='stop'`` (exit 3)
"""

from __future__ import annotations

import os


class JaxsegError(Exception):
    """A problem the user can fix; the message says what and, where possible, how."""

    exit_code = 1


class ConfigError(JaxsegError, ValueError):
    """A config that cannot run; the message lists every problem found."""

    exit_code = 2


class DataError(JaxsegError):
    """Bad or missing input data; ``path`` names the file or folder at fault.

    Every unreadable, truncated or inconsistent file (a corrupt PNG, an image and
    mask of different sizes, a mask with values other than {0,1}/{0,255}, a missing
    mask, a duplicate name, an unreadable slide, a missing dataset folder) is
    reported as a ``DataError`` whose message starts with the offending path, so a
    user can fix or remove that one file. Loaders never skip silently: where a
    ``skip_bad_files`` option exists, skipped files are collected and listed.
    """

    exit_code = 3

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self):  # picklable, so it crosses tf.data / multiprocessing boundaries intact
        return (DataError, (self.path, self.message))


class NonFiniteError(JaxsegError, RuntimeError):
    """A step produced a NaN/Inf loss or gradient and ``config.train.nonfinite`` is ``'stop'``."""

    exit_code = 3
