"""The parts cache: what the steps gather from each failure file, keyed by its checksum.

A step that needs other files (step 0002 siblings and evidence targets, step 0003 what
every record of a name says) ``gather``s a small part from each file's rows. A run after
a batch must not parse the whole history for that, so the parts of every file are kept
in ``parts.jsonl`` of the store's cache folder (in the clone's ``.git/``, or a folder git
ignores: a cache is not the ledger; a run recomputes it when it is absent, and nobody who
clones the repo pays for it)::

    {"cache": 2, "tool_version", "parts": {step id: part version}}      first line
    {"path", "sum": checksum of the file's bytes, "lookups": {recipe: package id},
     "parts": {step id: part}}                                          one line per file
    {"sum": sha256 of the lines before it}                              last line

(The seal last: the cache is written in one pass as its lines are made.)

A part is a function of the file's bytes and of the queue's answers for the recipes the
file's per-recipe lines name (``lookups``), so an entry is used only while the file has
those bytes, the queue gives the same answers and the tool and part versions are the
same. A cache that does not read, or whose lines are not those its first line seals, is
ignored (never trusted) and written anew.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable
from typing import Any

from migrate import __version__, codec

FORMAT = 2
NAME = "parts.jsonl"
#: an entry's start, as this module writes it (``lookups`` empty: valid whatever the queue)
_HEAD = re.compile(rb'^\{"path":"([^"\\]+)","sum":"([0-9a-f]{64})","lookups":(\{\})?')

#: (path, checksum) -> the entry's line (JSON: decode it for its ``parts``)
Entries = dict[tuple[str, str], bytes]


def header(versions: dict[str, int]) -> bytes:
    head = {"cache": FORMAT, "tool_version": __version__, "parts": versions}
    return codec.dumps_bytes(head) + b"\n"


def _seal(digest: str) -> bytes:
    return b'{"sum":"' + digest.encode() + b'"}\n'


def load(store, versions: dict[str, int], names: dict[str, str | None]) -> Entries:
    """Every usable entry; an entry whose recipes the queue now answers differently is
    left out. ``versions``: the part version of every gathering step."""
    entries: Entries = {}
    try:
        data = (store.cache_dir() / NAME).read_bytes()
    except OSError:
        return entries
    head = header(versions)
    body, _, last = data[:-1].rpartition(b"\n")
    try:
        if not data.startswith(head) or last + b"\n" != _seal(
            hashlib.sha256(body + b"\n").hexdigest()
        ):
            return entries
        for line in body[len(head) :].split(b"\n"):
            if not line:
                continue
            m = _HEAD.match(line)
            if m and m.group(3):  # (no recipe looked up: nothing to check)
                entries[(m.group(1).decode(), m.group(2).decode())] = line
                continue
            obj = codec.loads_trusted(line)
            if valid(obj["lookups"], names):
                entries[(obj["path"], obj["sum"])] = line
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
    return entries


def save(store, versions: dict[str, int], lines: Iterable[bytes]) -> None:
    """The cache, whole, written as ``lines`` come (best effort: a cache that cannot be
    written is recomputed)."""
    try:
        folder = store.cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{NAME}.tmp"
        with open(tmp, "wb") as fh:
            seal = hashlib.sha256()
            for piece in itertools.chain([header(versions)], (x + b"\n" for x in lines)):
                seal.update(piece)
                fh.write(piece)
            fh.write(_seal(seal.hexdigest()))
        tmp.replace(folder / NAME)
    except Exception:  # noqa: BLE001 - a cache is never worth failing a run for
        pass


def valid(lookups: dict[str, Any], names: dict[str, str | None]) -> bool:
    """Whether the queue still gives the answers an entry's parts were built on."""
    return all(names.get(recipe) == pid for recipe, pid in lookups.items())


def blob(lookups: dict[str, Any], parts: dict[str, Any]) -> bytes:
    """A file's gathered parts as JSON (what crosses from a worker, and the cache keeps)."""
    return codec.dumps_bytes({"lookups": lookups, "parts": parts})


def entry(path: str, digest: str, parts_blob: bytes) -> bytes:
    """A cache line: where and which bytes, then the ``blob``'s fields."""
    return codec.dumps_bytes({"path": path, "sum": digest})[:-1] + b"," + parts_blob[1:]


def parts_of(line_or_blob: bytes, step_id: str) -> Any:
    return codec.loads_trusted(line_or_blob)["parts"][step_id]


class Recorder:
    """``package_of`` for :func:`migrate.failures_index.file_rows` that records the answers
    it gave (an entry is valid while the queue gives the same)."""

    __slots__ = ("names", "seen")

    def __init__(self, names: dict[str, str | None]):
        self.names = names
        self.seen: dict[str, str | None] = {}

    def __call__(self, recipe: str) -> str | None:
        pid = self.names.get(recipe)
        self.seen[recipe] = pid
        return pid
