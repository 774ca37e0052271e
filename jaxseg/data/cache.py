"""Keys for derived data caches: what a cache was built from, so a stale one is never reused.

A cache (a prepared TFDS dataset, a slide's patch shards) is valid only for
the files it was built from and the parameters that shaped it. Every cache in
``jaxseg.data`` is described by one *source record*::

    {"kind": "covid_qu_ex", "format": 1,
     "root": "/resolved/path/of/the/source",
     "params": {"task": "lung", "skip_bad_files": false, ...},
     "files": [["relative/name.png", size, mtime_ns], ...]}   # sorted by name

and lives in a folder named by :func:`digest` of that record, so a changed
file (size or modification time), another copy of the data (another resolved
root), another parameter or a new cache format lands in a new folder and is
built afresh. The record is also stored with the cache as the build's last
step, its completion mark (``source.json`` by :func:`write_record`, or inside
an index written last): a cache without a matching record is a build that did
not finish and is never used. :func:`change_reason` compares a new record
with the records of earlier caches to say in one line why a rebuild happens.

Fingerprints read directory entries and ``stat`` only, never file contents:
34,000 files take well under a second.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Iterable, Sequence

from jaxseg.errors import DataError

RECORD = "source.json"


def _walk(folder: str, prefix: str):
    """``[name, size, mtime_ns]`` of the regular files under ``folder`` (recursively, following links),
    named ``prefix`` + their path below ``folder`` with ``/`` separators."""
    rows, stack, seen = [], [(folder, prefix)], set()
    while stack:
        path, pre = stack.pop()
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in seen:  # a linked folder already walked: no endless loop
            continue
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)  # which alias of a linked folder is kept: deterministic
        for entry in entries:
            if entry.is_dir():
                stack.append((entry.path, pre + entry.name + "/"))
            elif entry.is_file():
                st = entry.stat()
                rows.append([pre + entry.name, st.st_size, st.st_mtime_ns])
    return rows


def fingerprint(root: str, paths: Iterable[str] | None = None, under: str | None = None) -> list[list]:
    """``[[name relative to root, size, mtime_ns], ...]`` sorted by name.

    Of every file under ``under`` (default ``root``), recursively, or, with
    ``paths``, of those files only. Reads directory entries and ``stat``, never contents.
    """
    try:
        if paths is not None:
            rows = [[_relative(p, root), st.st_size, st.st_mtime_ns] for p, st in ((p, os.stat(p)) for p in paths)]
        else:
            under = under or root
            prefix = _relative(under, root) + "/" if os.path.abspath(under) != os.path.abspath(root) else ""
            rows = _walk(under, prefix)
    except OSError as e:
        raise DataError(e.filename or under or root, f"cannot list or stat ({e.strerror or e})") from e
    return sorted(rows)


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def source_record(kind: str, fmt: int, root: str, params: dict, paths: Sequence[str] | None = None,
                  under: str | None = None) -> dict:
    """The record of a cache of ``kind`` (format ``fmt``) built from ``root`` with ``params``.

    Paths are resolved (``os.path.realpath``) first, so another copy of the data
    is another source; the files are those of :func:`fingerprint`.
    """
    real = os.path.realpath
    root = real(root)
    files = fingerprint(root, paths=None if paths is None else [real(p) for p in paths],
                        under=None if under is None else real(under))
    return {"kind": kind, "format": fmt, "root": root, "params": _plain(params), "files": files}


def _plain(value):
    """JSON's view of a value (tuples become lists), so a record equals itself after a round trip."""
    return json.loads(json.dumps(value, sort_keys=True))


def digest(record: dict, length: int = 16) -> str:
    """A hex digest of the whole record: the cache folder's name for it."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:length]


def write_record(folder: str, record: dict, name: str = RECORD) -> None:
    """Writes ``record`` into ``folder`` atomically (the last step of a build: its completion mark)."""
    path = os.path.join(folder, name)
    tmp = f"{path}.incomplete-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, sort_keys=True)
    os.replace(tmp, path)


def read_record(path: str) -> dict | None:
    """The record stored at ``path``; None when absent or unreadable (an unfinished build)."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def earlier_records(pattern: str, exclude: str | None = None) -> list[dict]:
    """The readable records matching the glob ``pattern`` (records of other caches), newest first."""
    paths = [p for p in glob.glob(pattern) if exclude is None or os.path.abspath(p) != os.path.abspath(exclude)]
    paths.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    return [r for r in map(read_record, paths) if r is not None]


def change_reason(new: dict, earlier: list[dict]) -> str:
    """One line: why no earlier cache fits ``new`` (compared with the closest one of the same kind)."""
    same_kind = [r for r in earlier if r.get("kind") == new["kind"]]
    if not same_kind:
        return "no earlier cache"

    def distance(r):  # prefer the same source folder, then the same parameters
        return (r.get("root") != new["root"], r.get("params") != new["params"])

    old = min(same_kind, key=distance)
    reasons = []
    if old.get("format") != new["format"]:
        reasons.append(f"cache format {old.get('format')} -> {new['format']}")
    if old.get("root") != new["root"]:
        reasons.append(f"source folder {old.get('root')} -> {new['root']}")
    old_params = old.get("params", {})
    changed = sorted(k for k in set(old_params) | set(new["params"]) if old_params.get(k) != new["params"].get(k))
    if changed:
        reasons.append("parameters changed: " + ", ".join(
            f"{k} {old_params.get(k)!r} -> {new['params'].get(k)!r}" for k in changed))
    if old.get("root") == new["root"]:
        files = _file_changes(old.get("files", []), new["files"])
        if files:
            reasons.append(files)
    return "; ".join(reasons) or "the earlier cache differs"


def _file_changes(old: list, new: list) -> str:
    before = {row[0]: tuple(row[1:]) for row in old}
    after = {row[0]: tuple(row[1:]) for row in new}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    modified = sorted(n for n in set(after) & set(before) if after[n] != before[n])
    parts = [f"{len(v)} {what} (first: {v[0]})" for what, v in
             (("files modified", modified), ("files added", added), ("files removed", removed)) if v]
    return "source " + ", ".join(parts) if parts else ""


def cache_root(data_config) -> str:
    """``config.data.cache_dir``, or TFDS's usual ``~/tensorflow_datasets`` when empty: where every
    prepared copy lives (TFDS builds, slide patch caches, streaming shards under ``shards/``)."""
    return os.path.expanduser(data_config.get("cache_dir", "") or "~/tensorflow_datasets")
