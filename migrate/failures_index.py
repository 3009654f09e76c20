"""Questions about all failure records at once: each package's latest failure, and the
records of a file as flat rows (:func:`migrate.records.flat_records`).

Files are read one at a time (``--jobs`` spreads them over processes); only the answer is
kept, never the records of the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrate import codec
from migrate.errors import BadInputError
from migrate.evidence.messages import blocker_names, true_not_found
from migrate.evidence.names import merge
from migrate.layout import FailureFile
from migrate.parallel import map_files
from migrate.reader import Problem, line_version, split_lines
from migrate.records import PackageOf, flat_records, shape_of, ts_key
from migrate.status_rules import Latest
from migrate.store import Store


def file_rows(
    rel: str,
    data: bytes,
    package_of: PackageOf | None = None,
    want: int | None = 2,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The flat rows of every record in a failure file, and a problem for each line that is
    not a failure line (or, with ``want``, not at that schema version). Lines are decoded,
    not validated (``check`` does that): a later step reads what an earlier one wrote."""
    ff = FailureFile.from_rel(rel)
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for lineno, raw in split_lines(data):
        if not raw.strip():
            continue
        try:
            obj = codec.loads_trusted(raw)
            shape_of(obj)
            version = line_version(obj)
            if want is not None and version != want:
                raise ValueError(
                    f"a schema_version {version} line where {want} is expected"
                    " (see `migrate check`)"
                )
            rows.extend(flat_records(ff, lineno, obj, package_of))
        except (ValueError, KeyError, TypeError) as exc:  # (DecodeError is a ValueError)
            problems.append(Problem(rel, lineno, str(exc) if str(exc) else repr(exc)))
    return rows, problems


def refuse(problems: list[Problem], what: str) -> None:
    """Raise the one error for failure lines that cannot be read (``what``: what was not
    done, "nothing was exported")."""
    if problems:
        raise BadInputError(
            f"{len(problems)} line(s) are not failure lines; {what}",
            [str(p) for p in problems],
            hint="run `migrate check`",
        )


def package_record_names(row: dict[str, Any]) -> list[str]:
    """The blocker names a package record proves by itself (what a sibling lookup takes):
    none for a true not-found (``package 'X' not found in homebrew``), else its
    ``blocked_by`` and the names its message proves, merged."""
    msg = row.get("message")
    names = merge(row["blocked_by"] or [], blocker_names(msg, row["name"]).names if msg else [])
    return [] if names and msg and true_not_found(msg) is not None else names


def latest_in_rows(
    rows: list[dict[str, Any]], rel: str, only: frozenset[str] | set[str] | None = None
) -> dict[str, Latest]:
    """The latest package record of each package among one file's rows (of equal times the
    later line wins). Per-recipe (platform) records never count: a recipe that failed on
    one platform after it passed elsewhere is not a failed package."""
    found: dict[str, Latest] = {}
    for row in rows:
        pid = row["package_id"]
        if row["scope"] != "package" or (only is not None and pid not in only):
            continue
        key = ts_key(row["timestamp"])
        cur = found.get(pid)
        if cur is None or key >= cur.ts:
            found[pid] = Latest(
                key, row["timestamp"], row["category"], row["blocked_by"], f"{rel}:{row['line']}"
            )
    return found


def merge_latest(parts: Iterable[dict[str, Latest]]) -> dict[str, Latest]:
    """:func:`latest_in_rows` of several files, in file order (of equal times the later
    file wins)."""
    out: dict[str, Latest] = {}
    for part in parts:
        for pid, latest in part.items():
            cur = out.get(pid)
            if cur is None or latest.ts >= cur.ts:
                out[pid] = latest
    return out


def latest_package_failures(
    repo: Store,
    problems: list[Problem] | None = None,
    jobs: int = 1,
    only: set[str] | None = None,
) -> dict[str, Latest]:
    """package_id -> its latest package-scope failure, over every failure file, at any
    version. Lines that are not failure lines are added to ``problems``. ``only``: the
    packages wanted."""
    problems = [] if problems is None else problems

    def one(rel: str) -> tuple[dict[str, Latest], list[Problem]]:
        rows, probs = file_rows(rel, repo.read_bytes(rel), want=None)
        return latest_in_rows(rows, rel, only), probs

    parts = []
    for found, probs in map_files(one, repo.failure_rels(), jobs):
        problems.extend(probs)
        parts.append(found)
    return merge_latest(parts)
