"""Where each failure file stands, and what the gathering steps need from it: one read.

Every failure file is read once (``--jobs`` spreads them over processes): its checksum,
the lowest ``schema_version`` of its lines (what its content lacks, :mod:`.lifecycle`),
and, when a run needs them, the parts every gathering step takes from it (from the cache
where the file's bytes and the queue's answers are the same, else from its rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import codec
from migrate.failures_index import file_rows
from migrate.parallel import map_files
from migrate.progress import Phase, phase
from migrate.reader import Problem, split_lines
from migrate.store import cache
from migrate.store.ledger import checksum


@dataclass(slots=True)
class Seen:
    """One failure file as the run found it (small: it crosses from a worker)."""

    rel: str
    digest: str
    #: the lowest schema_version of its lines (1 where a line does not say; None: no line)
    version: int | None
    parts: bytes | None = None  # cache.blob of its parts (None: not asked for)
    cached: bool = False  # the parts came from the cache
    problems: list[Problem] = field(default_factory=list)  # lines that are not failure lines


_V2 = b'{"schema_version":2,'
_V1 = b'{"schema_version":1,'


def content_version(data: bytes) -> int | None:
    """The lowest schema_version among a failure file's lines; a line that does not say
    counts as 1 (the steps will name it); None for a file with no line (nothing to
    migrate: five real batch files are empty). Told from the bytes where Go spelled them."""
    lowest = None
    for _, raw in split_lines(data):
        if not raw.strip():
            continue
        if raw.startswith(_V2):
            v = 2
        elif raw.startswith(_V1):
            return 1
        else:
            try:
                v = codec.loads(raw).get("schema_version")
            except (ValueError, AttributeError):
                v = None
            v = v if isinstance(v, int) and not isinstance(v, bool) else 1
        lowest = v if lowest is None else min(lowest, v)
    return lowest


def parts_of(rel: str, data: bytes, gatherers, names) -> tuple[bytes, list[Problem]]:
    """What every gathering step takes from a failure file's bytes (a cache blob)."""
    rec = cache.Recorder(names)
    rows, problems = file_rows(rel, data, rec, want=None)
    return cache.blob(rec.seen, {s.id: s.gather(rel, rows) for s in gatherers}), problems


def survey(
    store,
    rels: list[str],
    gatherers: list,
    names: dict[str, str | None],
    cached: cache.Entries,
    jobs: int = 1,
    progress: Phase | None = None,
    known: dict[str, tuple[str, int | None]] | None = None,
) -> dict[str, Seen]:
    """Every failure file of ``rels`` read once; parts for ``gatherers`` (none: no parts).
    ``known``: a file's checksum and version where the caller has just read it (`check`):
    not read again when that is all the survey needs (its parts in the cache)."""
    known = known or {}

    def one(rel: str) -> Seen:
        if rel in known:
            digest, version = known[rel]
            hit = cached.get((rel, digest)) if gatherers else None
            if hit is not None or not gatherers:
                return Seen(rel, digest, version, parts=hit, cached=hit is not None)
        try:
            data = store.read_bytes(rel)
        except Exception as exc:  # (unreadable: the step that reads it names the problem)
            return Seen(rel, "", 1, problems=[Problem(rel, 0, str(exc).removeprefix(rel + ": "))])
        digest = checksum(data)
        seen = Seen(rel, digest, content_version(data))
        if gatherers:
            hit = cached.get((rel, digest))
            if hit is not None:
                seen.parts, seen.cached = hit, True
            else:
                seen.parts, seen.problems = parts_of(rel, data, gatherers, names)
        return seen

    shown = phase(progress, "read every failure file", len(rels))
    out = {}
    for rel, seen in zip(rels, map_files(one, rels, jobs, shown), strict=True):
        seen.rel = rel  # (the main process's string, not a copy from a worker: 57,000 of them)
        out[rel] = seen
    return out
