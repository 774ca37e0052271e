"""jaxseg.data.cache: fingerprints, records, digests, reasons; the histopathology patch cache keyed by them."""

import json
import os
import shutil

import pytest

from jaxseg.data import cache


def _tree(root):
    for rel, data in {"b/y.png": b"yy", "a.png": b"a", "b/x.png": b"xxx", "c/d/z.png": b""}.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def test_fingerprint_is_sorted_relative_and_stat_only(tmp_path):
    _tree(str(tmp_path))
    rows = cache.fingerprint(str(tmp_path))
    assert [r[0] for r in rows] == ["a.png", "b/x.png", "b/y.png", "c/d/z.png"]
    assert [r[1] for r in rows] == [1, 3, 2, 0]
    assert rows == cache.fingerprint(str(tmp_path))
    assert [r[0] for r in cache.fingerprint(str(tmp_path), under=str(tmp_path / "b"))] == ["b/x.png", "b/y.png"]
    only = cache.fingerprint(str(tmp_path), paths=[str(tmp_path / "c/d/z.png"), str(tmp_path / "a.png")])
    assert [r[0] for r in only] == ["a.png", "c/d/z.png"]
    st = os.stat(tmp_path / "b/x.png")
    os.utime(tmp_path / "b/x.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # 1 ns later, same size
    assert cache.fingerprint(str(tmp_path)) != rows
    os.symlink(tmp_path, tmp_path / "c" / "loop")  # a linked folder cycle ends
    assert len(cache.fingerprint(str(tmp_path))) == 4


def test_record_digest_depends_on_root_files_params_and_format(tmp_path):
    _tree(str(tmp_path / "A"))
    shutil.copytree(tmp_path / "A", tmp_path / "B", copy_function=shutil.copy2)  # same names, sizes, mtimes
    rec = cache.source_record("k", 1, str(tmp_path / "A"), {"task": "lung", "cats": ("x",)})
    assert rec["root"] == os.path.realpath(tmp_path / "A") and rec["params"]["cats"] == ["x"]
    d = cache.digest(rec)
    os.symlink(tmp_path / "A", tmp_path / "link")
    assert cache.digest(cache.source_record("k", 1, str(tmp_path / "link"), {"task": "lung", "cats": ["x"]})) == d
    others = [cache.source_record("k", 1, str(tmp_path / "B"), {"task": "lung", "cats": ("x",)}),
              cache.source_record("k", 2, str(tmp_path / "A"), {"task": "lung", "cats": ("x",)}),
              cache.source_record("k", 1, str(tmp_path / "A"), {"task": "infection", "cats": ("x",)})]
    assert len({d} | {cache.digest(r) for r in others}) == 4
    assert "source folder" in cache.change_reason(rec, [others[0]])
    assert cache.change_reason(rec, [others[1]]) == "cache format 2 -> 1"
    assert cache.change_reason(rec, [others[2]]) == "parameters changed: task 'infection' -> 'lung'"
    assert cache.change_reason(rec, []) == "no earlier cache"
    with open(tmp_path / "A/b/y.png", "ab") as f:
        f.write(b"more")
    os.remove(tmp_path / "A/a.png")
    changed = cache.source_record("k", 1, str(tmp_path / "A"), {"task": "lung", "cats": ("x",)})
    assert cache.change_reason(changed, [others[0], rec]) == \
        "source 1 files modified (first: b/y.png), 1 files removed (first: a.png)"


def test_records_round_trip_and_partial_ones_do_not_count(tmp_path):
    rec = cache.source_record("k", 1, str(tmp_path), {"t": (1, 2)})
    cache.write_record(str(tmp_path), rec)
    assert cache.read_record(str(tmp_path / cache.RECORD)) == rec
    assert os.listdir(tmp_path) == [cache.RECORD]  # no temporary file left
    (tmp_path / cache.RECORD).write_text(json.dumps(rec)[:20])  # a write cut short
    assert cache.read_record(str(tmp_path / cache.RECORD)) is None
    assert cache.read_record(str(tmp_path / "absent.json")) is None


def test_fingerprint_of_many_files_is_fast(tmp_path):
    import time

    for d in range(20):
        os.makedirs(tmp_path / f"d{d}")
        for i in range(100):
            (tmp_path / f"d{d}" / f"{i}.png").write_bytes(b"")
    t0 = time.perf_counter()
    rows = cache.fingerprint(str(tmp_path))
    assert len(rows) == 2000 and time.perf_counter() - t0 < 1.0


# ------------------------------------------------------------ histopathology uses the same keys

def test_histopathology_cache_follows_its_source_and_parameters(tmp_path, capsys):
    from jaxseg.data.sources import histopathology as hp
    from tests.test_data_histopathology import P, make_slide

    slide, label_path, _ = make_slide(str(tmp_path / "A"))
    cfg = hp.TilingConfig(patch_size=P, tissue_downsample=8)
    root = str(tmp_path / "cache")
    folder, index = hp.cached_patches(slide, label_path, cfg, root)
    assert index["source"]["files"][0][0] == "labels/s1.tif" and "(no earlier cache)" in capsys.readouterr().err
    assert hp.cached_patches(slide, label_path, cfg, root)[0] == folder  # same files, same parameters: reused
    assert "tiling" not in capsys.readouterr().err
    other = hp.cached_patches(slide, label_path, hp.TilingConfig(patch_size=P, tissue_downsample=8,
                                                                 sampling="all"), root)[0]
    assert other != folder and "sampling 'positives' -> 'all'" in capsys.readouterr().err
    shutil.copytree(tmp_path / "A", tmp_path / "B", copy_function=shutil.copy2)
    copy = hp.cached_patches(str(tmp_path / "B/slides/s1.tif"), str(tmp_path / "B/labels/s1.tif"), cfg, root)[0]
    assert copy != folder and "source folder" in capsys.readouterr().err
    st = os.stat(label_path)
    os.utime(label_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed, _ = hp.cached_patches(slide, label_path, cfg, root)
    assert changed != folder and "1 files modified (first: labels/s1.tif)" in capsys.readouterr().err
