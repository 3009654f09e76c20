"""The gather index: what the steps need from each failure file, keyed by its checksum.

A step that needs other files (step 0002 siblings and evidence targets, step 0003 each
package's latest failure) ``gather``s a small JSON part from each file's rows. A run that
catches up a batch must not read the whole history for that: the parts of every file a
run reads are kept beside its ledger run, as ``data/.migrate/runs/<run id>.index.jsonl``::

    line 1   {"index": 1, "run", "tool_version", "sum": sha256 of the lines below}
    line 2+  {"path", "sum": checksum of the file's bytes, "lookups": {recipe: package id},
              "parts": {step id: part}}

A part is a function of the file's bytes and of the queue's answers for the recipes the
file's per-recipe lines name (``lookups``), so an entry is used only while the file has
those bytes, the queue gives the same answers and the tool is the same version. One
file per run: two branches add theirs side by side. An index file that is unreadable,
of another version or whose lines do not match its ``sum`` is ignored, never trusted: the
files it described are read again (and the next run writes their parts anew).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import Any

import jsonlines

from migrate import __version__, codec
from migrate.repo import DataRepo

FORMAT = 1
SUFFIX = ".index.jsonl"

#: (path, checksum) -> (lookups, parts)
Entries = dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]


def load(repo: DataRepo, runs_dir: str) -> tuple[Entries, list[str]]:
    """Every usable entry (a later run's wins), and the index files that were ignored."""
    folder = repo.path(runs_dir)
    entries: Entries = {}
    ignored: list[str] = []
    if not folder.is_dir():
        return entries, ignored
    for p in sorted(folder.iterdir()):
        if not p.name.endswith(SUFFIX):
            continue
        try:
            data = p.read_bytes()
            head_raw, _, body = data.partition(b"\n")
            head = codec.loads(head_raw)
            if (
                head.get("index") != FORMAT
                or head.get("tool_version") != __version__
                or head.get("sum") != hashlib.sha256(body).hexdigest()
            ):
                ignored.append(p.name)
                continue
            for obj in jsonlines.Reader(io.BytesIO(body), loads=codec.loads_trusted):
                entries[(obj["path"], obj["sum"])] = (obj["lookups"], obj["parts"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, jsonlines.Error):
            ignored.append(p.name)
    return entries, ignored


def valid(lookups: dict[str, Any], names: dict[str, str | None]) -> bool:
    """Whether the queue still gives the answers an entry's parts were built on."""
    return all(names.get(recipe) == pid for recipe, pid in lookups.items())


def entry(path: str, digest: str, lookups: dict[str, Any], parts: dict[str, Any]) -> bytes:
    return codec.dumps_bytes({"path": path, "sum": digest, "lookups": lookups, "parts": parts})


def write(repo: DataRepo, rel: str, run_id: str, lines: Iterable[bytes]) -> None:
    """One run's index file (atomically; not synced: it can always be rebuilt)."""
    body = b"".join(line + b"\n" for line in lines)
    if not body:
        return
    head = {
        "index": FORMAT,
        "run": run_id,
        "tool_version": __version__,
        "sum": hashlib.sha256(body).hexdigest(),
    }
    repo.write_atomic(rel, codec.dumps_bytes(head) + b"\n" + body, sync=False)


class Recorder:
    """``package_of`` for :func:`migrate.failures_index.file_rows` that records the answers
    it gave (an index entry is valid while the queue gives the same)."""

    __slots__ = ("names", "seen")

    def __init__(self, names: dict[str, str | None]):
        self.names = names
        self.seen: dict[str, str | None] = {}

    def __call__(self, recipe: str) -> str | None:
        pid = self.names.get(recipe)
        self.seen[recipe] = pid
        return pid
