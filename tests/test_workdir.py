import os

import pytest

from jaxseg.errors import JaxsegError
from jaxseg.training.workdir import prepare_workdir, safe_path


def test_symlink_out_of_the_workdir_is_refused(tmp_path):
    wd = prepare_workdir(tmp_path / "run")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, wd / "checkpoints")
    with pytest.raises(JaxsegError, match="outside the workdir"):
        safe_path(wd, "checkpoints")
    assert safe_path(wd, "metrics.jsonl") == wd / "metrics.jsonl"


def test_unwritable_workdir_is_reported(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(JaxsegError, match="cannot be written"):
        prepare_workdir(tmp_path / "f" / "run")
