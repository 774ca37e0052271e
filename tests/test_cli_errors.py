"""Each command turns a user's mistake into one ``error:`` line, a non-zero exit code and no traceback."""

import subprocess
import sys

import pytest


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args, message, code", [
    (["jaxseg.inspect", "missing_dir"], "missing_dir does not exist", 1),
    (["jaxseg.inspect", "."], "no orbax checkpoints found under", 1),
    (["jaxseg.predict", "--workdir=.", "--input=.", "--output=out"], "config.json not found", 1),
    (["jaxseg.report", "."], "holds no metrics.jsonl", 1),
    (["jaxseg.aggregate", "missing_dir"], "missing_dir does not exist", 1),
    (["jaxseg.aggregate", "."], "holds no metrics.jsonl records", 1),
    (["jaxseg.main", "--config=configs/default.py", "--workdir=wd", "--config.data.name=nope"],
     "config.data.name='nope' is not a dataset", 2),
])
def test_user_mistake_is_one_line_without_traceback(tmp_path, args, message, code):
    repo = __import__("pathlib").Path(__file__).resolve().parent.parent
    if args[0] == "jaxseg.main":
        args = [a.replace("configs/", f"{repo}/configs/") for a in args]
    out = _run(*args, cwd=tmp_path)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], out.stderr
