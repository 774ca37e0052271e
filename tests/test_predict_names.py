"""Inputs that share a stem get distinct output names; the others keep their stem (jaxseg.inference.inputs)."""

from pathlib import Path

import pytest

from jaxseg.errors import JaxsegError
from jaxseg.inference.inputs import find_inputs, output_names


def _files(tmp_path, *names):
    paths = []
    for n in names:
        p = tmp_path / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        paths.append(p)
    return paths


def test_unique_stems_are_kept(tmp_path):
    assert output_names(_files(tmp_path, "a.png", "b.dcm", "x/c.png")) == ["a", "b", "c"]


def test_same_stem_different_extension_adds_the_extension(tmp_path):
    assert output_names(_files(tmp_path, "a.png", "a.dcm", "b.png")) == ["a_png", "a_dcm", "b"]


def test_same_name_in_different_folders_adds_the_folder(tmp_path):
    assert output_names(_files(tmp_path, "x/a.png", "y/a.png")) == ["x_a", "y_a"]
    assert output_names(_files(tmp_path, "p/x/a.png", "q/x/a.png")) == ["p_x_a", "q_x_a"]


def test_mixed_clashes_and_case(tmp_path):
    names = output_names(_files(tmp_path, "x/a.png", "y/a.png", "y/a.dcm", "z/A.PNG"))
    assert names == ["x_a_png", "y_a_png", "a_dcm", "z_A_png"]
    assert len({n.casefold() for n in names}) == len(names)


def test_a_name_made_unique_cannot_clash_with_another_file(tmp_path):
    names = output_names(_files(tmp_path, "a.png", "a.dcm", "a_png.jpg"))
    assert len({n.casefold() for n in names}) == 3 and names[1] == "a_dcm"


def test_a_file_given_twice_is_predicted_once(tmp_path):
    (a,) = _files(tmp_path, "in/a.png")
    files = find_inputs([str(tmp_path / "in"), str(a)])
    assert files == [a] and output_names(files) == ["a"]
    with pytest.raises(JaxsegError, match="does not exist"):
        find_inputs([str(Path(tmp_path) / "missing.png")])
