"""The gather index: what the steps need from each failure file, keyed by its checksum.

A step that needs other files (step 0002 siblings and evidence targets, step 0003 each
package's latest failure) ``gather``s a small JSON part from each file's rows. A run that
catches up a batch must not read the whole history for that: the parts of every file a
run reads are kept beside its ledger run, as ``data/.migrate/runs/<run id>.index.jsonl``::

    {"path", "sum": checksum of the file's bytes, "lookups": {recipe: package id},
     "parts": {step id: part}}                                   one line per file
    {"sum": sha256 of the lines above, "index": 1, "run", "tool_version"}   last line

A part is a function of the file's bytes and of the queue's answers for the recipes the
file's per-recipe lines name (``lookups``), so an entry is used only while the file has
those bytes, the queue gives the same answers and the tool is the same version. One
file per run: two branches add theirs side by side. An index file that is unreadable,
of another version or whose lines do not match its ``sum`` is ignored, never trusted: the
files it described are read again (and the next run writes their parts anew).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from migrate import __version__, codec
from migrate.repo import TMP_SUFFIX, DataRepo

FORMAT = 1
SUFFIX = ".index.jsonl"
#: an entry's start, as this module writes it (``lookups`` empty: valid whatever the queue)
_HEAD = re.compile(rb'^\{"path":"([^"\\]+)","sum":"([0-9a-f]{64})","lookups":(\{\})?')

#: (path, checksum) -> the entry's line (JSON: decode it for its ``parts``)
Entries = dict[tuple[str, str], bytes]


def load(repo: DataRepo, runs_dir: str, names: dict[str, str | None]) -> tuple[Entries, list[str]]:
    """Every usable entry (a later run's wins), and the index files that were ignored. An
    entry whose recipes the queue now answers differently is left out."""
    folder = repo.path(runs_dir)
    entries: Entries = {}
    ignored: list[str] = []
    if not folder.is_dir():
        return entries, ignored
    for p in sorted(folder.iterdir()):
        if not p.name.endswith(SUFFIX):
            continue
        try:
            data = p.read_bytes()  # (no copy of it made: 57,000 entries are 23 MB)
            lines = data.splitlines()
            while lines and not lines[-1]:
                lines.pop()
            tail = lines.pop() if lines else b""
            body = memoryview(data)[: data.rfind(b"\n" + tail) + 1]
            head = codec.loads(tail)
            if (
                head.get("index") != FORMAT
                or head.get("tool_version") != __version__
                or head.get("sum") != hashlib.sha256(body).hexdigest()
            ):
                ignored.append(p.name)
                continue
            del data, body
            for line in lines:
                m = _HEAD.match(line)
                if m and m.group(3):  # (no recipe looked up: nothing to validate)
                    entries[(m.group(1).decode(), m.group(2).decode())] = line
                    continue
                obj = codec.loads_trusted(line)
                if valid(obj["lookups"], names):
                    entries[(obj["path"], obj["sum"])] = line
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ignored.append(p.name)
    return entries, ignored


def valid(lookups: dict[str, Any], names: dict[str, str | None]) -> bool:
    """Whether the queue still gives the answers an entry's parts were built on."""
    return all(names.get(recipe) == pid for recipe, pid in lookups.items())


def blob(lookups: dict[str, Any], parts: dict[str, Any]) -> bytes:
    """A file's gathered parts as JSON (what crosses from a worker, and the index keeps)."""
    return codec.dumps_bytes({"lookups": lookups, "parts": parts})


def entry(path: str, digest: str, parts_blob: bytes) -> bytes:
    """An index line: where and which bytes, then the ``blob``'s fields."""
    return codec.dumps_bytes({"path": path, "sum": digest})[:-1] + b"," + parts_blob[1:]


def parts_of(line_or_blob: bytes, step_id: str) -> Any:
    return codec.loads_trusted(line_or_blob)["parts"][step_id]


class Writer:
    """A run's index file, written as the run goes (lines are not kept in memory): a
    temporary file beside the runs, renamed by :meth:`finish` once the run is committed.
    Its last line is ``{"sum": sha256 of every line before it}``."""

    def __init__(self, repo: DataRepo, runs_dir: str):
        folder = repo.path(runs_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.tmp = folder / f".index-{os.getpid()}{TMP_SUFFIX}"
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 - closed by finish() or abandon()
        self.hash = hashlib.sha256()
        self.count = 0

    def add(self, line: bytes) -> None:
        line += b"\n"
        self.fh.write(line)
        self.hash.update(line)
        self.count += 1

    def finish(self, final: Path, run_id: str) -> None:
        """Not synced: a lost index is rebuilt by the next run that needs it."""
        head = {"index": FORMAT, "run": run_id, "tool_version": __version__}
        self.fh.write(codec.dumps_bytes({"sum": self.hash.hexdigest(), **head}) + b"\n")
        self.fh.close()
        if self.count:
            os.replace(self.tmp, final)
        else:
            self.tmp.unlink(missing_ok=True)

    def abandon(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


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
