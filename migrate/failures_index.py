"""Reading v2 failure records in later steps, and indexes over them (one streaming pass).

Steps after 0001 read lines this tool wrote, with the fast decoder; a line that is not a
v2 record any more (a v1 file added by the old CI writer, a hand edit, a merge conflict)
becomes a named problem, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from migrate import codec
from migrate.errors import BadInputError
from migrate.models import FailureRecordV2
from migrate.parallel import map_files
from migrate.reader import Problem, split_lines
from migrate.repo import DataRepo
from migrate.status_rules import Latest

V2_PREFIX = b'{"schema_version":2,'
V2_KEYS = frozenset(FailureRecordV2.model_fields)


def v2_lines(rel: str, data: bytes, problems: list[Problem]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line that starts like a v2 record."""
    for lineno, raw in split_lines(data):
        if not raw.strip():
            continue
        if not raw.startswith(V2_PREFIX) or not raw.rstrip().endswith(b"}"):
            problems.append(
                Problem(rel, lineno, "not a schema_version 2 record here (see `migrate check`)")
            )
            continue
        yield lineno, raw


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
        rec = codec.loads_own(raw)
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


def _latest_in_file(repo: DataRepo, rel: str) -> tuple[dict[str, Latest], list[Problem]]:
    out: dict[str, Latest] = {}
    problems: list[Problem] = []
    for lineno, raw in v2_lines(rel, repo.read_bytes(rel), problems):
        if b'"scope":"package"' not in raw:
            continue
        rec = decode_v2(rel, lineno, raw, problems)
        if rec is None or rec["scope"] != "package" or not rec["package_id"]:
            continue
        pid, category, blocked, ts = (
            rec["package_id"],
            rec["category"],
            rec["blocked_by"],
            rec["timestamp"],
        )
        key = ts_key(ts)
        cur = out.get(pid)
        if cur is None or key >= cur.ts:
            out[pid] = Latest(key, ts, category, blocked, f"{rel}:{lineno}")
    return out, problems


def latest_package_failures(
    repo: DataRepo, problems: list[Problem] | None = None, jobs: int = 1
) -> dict[str, Latest]:
    """package_id -> its latest package-scope failure (by timestamp; file order breaks ties).

    Platform-scope records never count: a recipe that failed on one platform after it
    passed elsewhere is not a failed package. Lines that are not v2 records are added to
    ``problems`` (and skipped).
    """
    out: dict[str, Latest] = {}
    problems = [] if problems is None else problems
    rels = [ff.rel for ff in repo.failure_files()]
    for found, probs in map_files(lambda rel: _latest_in_file(repo, rel), rels, jobs):
        problems.extend(probs)
        for pid, latest in found.items():
            cur = out.get(pid)
            if cur is None or latest.ts >= cur.ts:
                out[pid] = latest
    return out
