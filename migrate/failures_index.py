"""Reading v2 failure records in later steps, and indexes over them (one streaming pass).

Steps after 0001 read lines this tool wrote, with the fast decoder; a line that is not a
v2 record any more (a v1 file added by the old CI writer, a hand edit, a merge conflict)
becomes a named problem, never a traceback.

Whole-repo passes read a few fields straight from the bytes instead of decoding every line,
in files the ledger's checksum shows this tool wrote (``engine.latest_written``): such a
line is canonical JSON with its keys in a fixed order, and inside a JSON string every
``"`` is escaped, so an unescaped ``"key":`` sequence occurs only as a key, and the record's
own keys (``package_id``, ``scope``, ``timestamp``) occur nowhere else (evidence entries
have other keys). A line whose field is not where canonical JSON puts it is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any

from migrate import codec
from migrate.errors import BadInputError
from migrate.evidence.messages import blocker_names, true_not_found
from migrate.evidence.names import merge
from migrate.models import FailureRecordV2
from migrate.parallel import map_files
from migrate.reader import Problem, split_lines
from migrate.repo import DataRepo, sha256
from migrate.status_rules import Latest

V2_PREFIX = b'{"schema_version":2,'
V2_KEYS = frozenset(FailureRecordV2.model_fields)


def v2_lines(rel: str, data: bytes, problems: list[Problem]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line that starts like a v2 record."""
    for lineno, raw in split_lines(data):
        if raw.startswith(V2_PREFIX) and raw.endswith(b"}"):  # the usual line, no copies
            yield lineno, raw
        elif not raw or raw.isspace():
            continue
        elif raw.startswith(V2_PREFIX) and raw.rstrip().endswith(b"}"):
            yield lineno, raw
        else:
            problems.append(
                Problem(rel, lineno, "not a schema_version 2 record here (see `migrate check`)")
            )


def refuse_non_v2(problems: list[Problem]) -> None:
    """Raise the one error a later step gives for lines that are not v2 records."""
    if problems:
        raise BadInputError(
            f"{len(problems)} failure line(s) are not v2 records; nothing was written",
            [str(p) for p in problems],
            hint="run `migrate check`; files added by the old CI writer need `migrate down"
            " --to base` and `migrate up` again",
        )


def decode_v2(rel: str, lineno: int, raw: bytes, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        rec = codec.loads_record(raw)
    except ValueError as exc:
        problems.append(Problem(rel, lineno, f"invalid JSON ({exc})"))
        return None
    if not isinstance(rec, dict) or rec.keys() != V2_KEYS:
        have = set(rec) if isinstance(rec, dict) else set()
        problems.append(
            Problem(
                rel,
                lineno,
                f"not a v2 record: missing {sorted(V2_KEYS - have)},"
                f" unknown {sorted(have - V2_KEYS)} (see `migrate check`)",
            )
        )
        return None
    return rec


def ts_key(ts: str) -> str:
    """Sortable form of an RFC 3339 UTC timestamp with 0-9 fractional digits."""
    base, _, frac = ts.rstrip("Z").partition(".")
    return base.replace("-", "").replace(":", "") + frac.ljust(9, "0")


_PID_AT = len(V2_PREFIX)
_PID_KEY = b'"package_id":"'
_PID_NULL = b'"package_id":null,'
UNKNOWN = b""  # a field not where canonical JSON puts it: decode the line


def package_id_bytes(raw: bytes) -> bytes | None:
    """The ``package_id`` of a v2 line, read from its bytes (None for null), or
    :data:`UNKNOWN` when the line must be decoded to tell (not canonical, or escapes)."""
    if raw.startswith(_PID_KEY, _PID_AT):
        start = _PID_AT + len(_PID_KEY)
        end = raw.find(b'"', start)
        pid = raw[start:end]
        return pid if end > start and b"\\" not in pid else UNKNOWN
    return None if raw.startswith(_PID_NULL, _PID_AT) else UNKNOWN


#: A canonical package-scope v2 line: its package id and its (top-level, last-but-one)
#: timestamp. ``[^\n]*`` runs to the end of the line and backs off to the last
#: ``,"timestamp":"``, which is the record's own (nothing after it but ``run``).
_PACKAGE_LINE = re.compile(
    rb'^\{"schema_version":2,"package_id":"([^"\\\n]+)",[^\n]*?,"scope":"package",'
    rb'[^\n]*,"timestamp":"([^"\\\n]+)","run":(?:null|"[^"\\\n]*")\}$',
    re.MULTILINE,
)
_SEGMENT_START = b',"category":"'
_SEGMENT_END = b',"evidence":['


def all_v2_lines(data: bytes) -> bool:
    """True when every line of ``data`` starts like a v2 record (no blank or other line):
    the files this tool writes. Byte scans below rely on it; other files are read line by
    line, which names each line that is not a v2 record."""
    if not data.startswith(V2_PREFIX) or not data.endswith((b"}", b"}\n")):
        return False
    # A raw newline byte is always a line break (JSON escapes it inside strings): every
    # break joins a line ending in "}" to one starting like a v2 record. (Long needles:
    # bytes.count is several times faster on them than on one or two bytes.)
    return data.count(b"\n", 0, len(data) - 1) == data.count(b'}\n{"schema_version":2,')


def lines_with(data: bytes, needle: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line holding ``needle``, found by byte search."""
    lineno, pos, at = 1, 0, data.find(needle)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        lineno += data.count(b"\n", pos, start)
        pos = start
        yield lineno, data[start:end]
        at = data.find(needle, end)


def package_lines(data: bytes) -> list[tuple[bytes, bytes, int]] | None:
    """(package id, timestamp, offset of the line) of every package-scope line, by one
    regex scan; None unless :func:`all_v2_lines` holds and every package-scope line is
    canonical (then the caller reads the file line by line)."""
    if not all_v2_lines(data):
        return None
    rows = [(m.group(1), m.group(2), m.start()) for m in _PACKAGE_LINE.finditer(data)]
    return rows if len(rows) == data.count(b'"scope":"package"') else None


def line_at(data: bytes, start: int) -> bytes:
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)]


def _latest_fast(rel: str, data: bytes, only: set[bytes] | None) -> dict[str, Latest] | None:
    """:func:`_latest_in_file` with the scan in the regex engine, for a file that is all
    canonical v2 lines (every line starts like one, and every package-scope line matches
    :data:`_PACKAGE_LINE`); None for any other file, which takes the line-by-line path."""
    rows = package_lines(data)
    if rows is None:
        return None
    if only is not None:
        rows = [row for row in rows if row[0] in only]
    if not rows:
        return {}
    if len({(len(ts), ts[13:14], ts[16:17]) for _, ts, _ in rows}) == 1:
        rows.sort(key=itemgetter(1))  # one timestamp layout: bytes sort in time order
    else:
        rows.sort(key=lambda row: ts_key(row[1].decode("ascii")))
    # the sort is stable: of equal timestamps the later line comes last, and wins here
    best = {pid: (ts, start) for pid, ts, start in rows}
    out: dict[str, Latest] = {}
    lineno, pos = 1, 0
    for pid, (ts, start) in sorted(best.items(), key=lambda kv: kv[1][1]):
        lineno += data.count(b"\n", pos, start)
        pos = start
        raw = line_at(data, start)
        a = raw.find(_SEGMENT_START)
        b = raw.find(_SEGMENT_END, a)
        try:  # only the fields the rules need, not the message
            seg = codec.loads_own(b"{" + raw[a + 1 : b] + b"}")
            category, blocked = seg["category"], seg["blocked_by"]
        except (ValueError, KeyError, TypeError):
            return None
        timestamp = ts.decode("ascii")
        out[pid.decode("utf-8")] = Latest(
            ts_key(timestamp), timestamp, category, blocked, f"{rel}:{lineno}"
        )
    return out


#: One :class:`Latest` as a file's carry holds it: (ts key, timestamp, category,
#: blocked_by, line number); the file is the carry's.
Carried = tuple[str, str, str, "list[str] | None", int]


class FileLatest:
    """What :func:`_latest_in_file` reads from a file, built instead by the step that
    writes the file's records, from the records themselves (fed in file order): the latest
    package-scope record of each package in ``only``. A step hands it on as its
    ``UpResult.carry``, so the next step need not scan the file again: as plain tuples
    (:data:`Carried`), which cross a process boundary four times faster than objects."""

    def __init__(self, only: frozenset[str], fingerprint: str):
        self.only, self.fingerprint = only, fingerprint
        self.best: dict[str, tuple[str, int, str, str, list[str] | None]] = {}

    def add_all(self, lineno: int, recs: Iterable[dict[str, Any]]) -> None:
        """The records of consecutive lines, the first at ``lineno`` (one call per v1 line:
        every record of the history comes through here)."""
        only, best = self.only, self.best
        for i, rec in enumerate(recs, start=lineno):
            pid = rec["package_id"]
            if pid in only and rec["scope"] == "package":
                key = ts_key(rec["timestamp"])
                cur = best.get(pid)
                if cur is None or key >= cur[0]:  # of equal times the later line wins
                    best[pid] = (key, i, rec["timestamp"], rec["category"], rec["blocked_by"])

    def carry(self) -> tuple[str, dict[str, Carried]]:
        return self.fingerprint, {
            pid: (key, timestamp, category, blocked, lineno)
            for pid, (key, lineno, timestamp, category, blocked) in self.best.items()
        }


def package_record_names(rec: dict[str, Any]) -> list[str]:
    """The blocker names a package record proves by itself, as step 0002 reads them for a
    sibling lookup: none for a true not-found (``package 'X' not found in homebrew``),
    else its ``blocked_by`` and the names its message proves, merged."""
    msg = rec.get("message")
    if msg and true_not_found(msg) is not None:
        return []
    return merge(rec["blocked_by"] or [], blocker_names(msg, rec["name"]).names if msg else [])


class SiblingFacts:
    """What step 0002's prepare reads from a file to find sibling records (its passes 1
    and 2), built instead by step 0001 from the records it writes there: the packages with
    a platform record that may take a sibling's blockers (``need``), and the package
    records of the packages in ``candidates`` — every package with a platform line that
    may need one, gathered before step 0001 ran (:meth:`carry` says whether ``need`` stayed
    inside it)."""

    def __init__(self, candidates: frozenset[str], fingerprint: str):
        self.candidates, self.fingerprint = candidates, fingerprint
        self.need: set[str] = set()
        self.history: list[tuple[str, int, str, list[str]]] = []

    def add_all(self, lineno: int, recs: Iterable[dict[str, Any]]) -> None:
        """The records of consecutive lines, the first at ``lineno``."""
        candidates = self.candidates
        for i, rec in enumerate(recs, start=lineno):
            pid = rec["package_id"]
            if not pid:
                continue
            if rec["scope"] == "platform":
                if not rec["blocked_by"] and (
                    rec["exit_code"] == 8 or rec["category"] == "missing_dep"
                ):
                    self.need.add(pid)
            elif pid in candidates:
                self.history.append((pid, i, ts_key(rec["timestamp"]), package_record_names(rec)))

    def carry(self) -> tuple[str, bool, list[str], list[tuple[str, int, str, list[str]]]]:
        """(fingerprint of ``candidates``, whether ``need`` is inside them, ``need``, the
        package records of candidates as (package id, line, ts key, names))."""
        return (
            self.fingerprint,
            self.need <= self.candidates,
            sorted(self.need),
            self.history,
        )


def _latest_in_file(
    repo: DataRepo, rel: str, only: set[bytes] | None = None, written: str | None = None
) -> tuple[dict[str, Latest], list[Problem]]:
    """The latest package record of each package in one file (file order breaks ties).

    A file that still has the checksum this tool left (``written``) holds only lines this
    tool wrote or validated: package id and timestamp are read by one regex scan (when
    every package line has the canonical layout) and only winners are decoded. Any other
    file is decoded line by line, so a broken line is named."""
    data = repo.read_bytes(rel)
    if written is not None and written == sha256(data):
        fast = _latest_fast(rel, data, only)
        if fast is not None:
            return fast, []
    out: dict[str, Latest] = {}
    problems: list[Problem] = []
    for lineno, raw in v2_lines(rel, data, problems):
        if b'"scope":"package"' not in raw:
            continue
        rec = decode_v2(rel, lineno, raw, problems)
        if rec is None or rec["scope"] != "package" or not rec["package_id"]:
            continue
        pid = rec["package_id"]
        if only is not None and pid.encode("utf-8") not in only:
            continue
        key = ts_key(rec["timestamp"])
        cur = out.get(pid)
        if cur is None or key >= cur.ts:
            out[pid] = Latest(
                key, rec["timestamp"], rec["category"], rec["blocked_by"], f"{rel}:{lineno}"
            )
    return out, problems


def latest_package_failures(
    repo: DataRepo,
    problems: list[Problem] | None = None,
    jobs: int = 1,
    only: set[str] | None = None,
    written: dict[str, str] | None = None,
    carried: dict[str, tuple[str, dict[str, Carried]]] | None = None,
) -> dict[str, Latest]:
    """package_id -> its latest package-scope failure (by timestamp; file order breaks ties).

    Platform-scope records never count: a recipe that failed on one platform after it
    passed elsewhere is not a failed package. Lines that are not v2 records are added to
    ``problems`` (and skipped). ``only``: the packages wanted (e.g. the queue's), so that
    no other package's record is decoded or sent between processes. ``written``: file ->
    checksum this tool left there (``engine.latest_written``); such files are scanned fast.
    ``carried``: file -> (checksum, its :class:`FileLatest` result for the same ``only``),
    from the steps that wrote it in this run, for every file, each keeping only the packages
    whose latest record it holds; used when every file still has its checksum.
    """
    out: dict[str, Latest] = {}
    problems = [] if problems is None else problems
    rels = [ff.rel for ff in repo.failure_files()]
    wanted = None if only is None else {pid.encode("utf-8") for pid in only}
    written = written or {}
    carried = carried or {}
    if carried and set(carried) != set(rels):
        carried = {}  # all or nothing: a file's account may leave out what another's holds

    def one(rel: str) -> tuple[dict[str, Latest] | None | bool, list[Problem]]:
        if rel in carried:  # the writer's own account of these bytes: nothing to send back
            return (None if repo.checksum(rel) == carried[rel][0] else False), []
        return _latest_in_file(repo, rel, wanted, written.get(rel))

    for rel, (found, probs) in zip(rels, map_files(one, rels, jobs), strict=True):
        problems.extend(probs)
        if found is False:  # changed since it was written: read every file
            return latest_package_failures(repo, problems, jobs, only, written)
        if found is None:
            for pid, (key, timestamp, category, blocked, lineno) in carried[rel][1].items():
                cur = out.get(pid)
                if cur is None or key >= cur.ts:
                    out[pid] = Latest(key, timestamp, category, blocked, f"{rel}:{lineno}")
            continue
        for pid, latest in found.items():
            cur = out.get(pid)
            if cur is None or latest.ts >= cur.ts:
                out[pid] = latest
    return out
