"""Failure lines at v1 and v2 and the records they hold: the one module that knows the layout.

A line has one of two shapes (formats.md section 1), at either version:

* ``envelope`` — ``{"schema_version", "ecosystem", "environment", "updated_at",
  "failures": [item, ...]}`` from the Go orchestrator; each item is a *package* record
  (the package failed);
* ``recipe`` — ``{"schema_version", "recipe", "platform", "exit_code", "category", ...,
  "timestamp"}`` from the CI workflow's jq step; a *platform* record (a recipe that passed
  on linux-glibc failed on another platform: never a package-level failure).

**v2 is v1 made strict and complete, never moved** (design.md, "Compatibility"): a line
keeps its shape, its place in its file and its keys in their order, so every reader that
understood v1 reads v2 unchanged. v2 changes values and adds keys, at fixed places:

=================== ============================================================ ======
key                 v2                                                           step
=================== ============================================================ ======
schema_version      2 (on the line)                                              0001
category            the canonical name                                           0001
category_legacy     the v1 name, after ``category``, only where it was a legacy   0001
                    name
blocked_by          stated on every record: the v1 list, else added after         0001
                    ``category_legacy``/``category`` as null (unknown)
ecosystem           (recipe lines) kept if the writer put one in, else added      0001
                    after ``recipe``: proven from the file name or the queue, or
                    null
reclassified_from   the category before a dependency miss was proven, after       0002
                    ``category_legacy``/``category``
evidence            the provenance of the backfilled names, last                  0002
=================== ============================================================ ======

Each step's inverse is a function of the line alone (:func:`down_0001`,
:func:`down_0002`): a step proves, line by line, that the inverse gives back the exact
original bytes, and keeps the original line in its ledger patch where it would not (another
writer's spacing, a v1 line stating ``blocked_by: null``, an ``ecosystem`` its writer put
in). :func:`flat_records` gives the one-record-per-row view that analysis wants (explain,
report, export) from a line at either version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from migrate.layout import FailureFile
from migrate.models import CANONICAL_CATEGORIES, LEGACY_CATEGORIES

Line = dict[str, Any]


def shape_of(obj: Any) -> str:
    """``envelope`` or ``recipe``, the way tsuku's readers tell them (formats.md section 7);
    raises ValueError with the reason for anything else."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if isinstance(obj.get("failures"), list) or ("failures" in obj and "recipe" not in obj):
        return "envelope"  # (a ``failures`` that is no list: the envelope model names it)
    if "recipe" in obj:
        return "recipe"
    raise ValueError("unknown shape: a line with neither 'failures' nor 'recipe'")


def records_of(line: Line) -> list[dict[str, Any]]:
    """The records a line holds, as the line's own dicts (changing them changes the line)."""
    return line.get("failures", [line])


def _put(rec: dict[str, Any], key: str, value: Any, after: tuple[str, ...]) -> dict[str, Any]:
    """``rec`` with ``key`` set to ``value``: in its place when present, else right after
    the first of ``after`` that ``rec`` has (at the end when none). Returns a new dict
    when a key is inserted; callers keep the result."""
    if key in rec:
        rec[key] = value
        return rec
    anchor = next((a for a in after if a in rec), None)
    if anchor is None:
        return {**rec, key: value}
    out: dict[str, Any] = {}
    for k, v in rec.items():
        out[k] = v
        if k == anchor:
            out[key] = value
    return out


_AFTER_CATEGORY = ("category_legacy", "category")


# --------------------------------------------------------------------------- step 0001


def _record_up(rec: dict[str, Any]) -> dict[str, Any]:
    rec = dict(rec)
    name = rec["category"]
    if name in LEGACY_CATEGORIES:
        rec["category"] = LEGACY_CATEGORIES[name]
        rec = _put(rec, "category_legacy", name, ("category",))
    if "blocked_by" not in rec:
        rec = _put(rec, "blocked_by", None, _AFTER_CATEGORY)
    return rec


def up_0001(line: Line, ecosystem: str | None = None) -> Line:
    """The v2 form of a valid v1 line (a new dict; ``line`` is not changed). ``ecosystem``:
    what a recipe line without one of its own is proven to belong to (or None)."""
    if "failures" in line:
        return {
            **line,
            "schema_version": 2,
            "failures": [_record_up(item) for item in line["failures"]],
        }
    new = _record_up({**line, "schema_version": 2})
    return new if "ecosystem" in new else _put(new, "ecosystem", ecosystem, ("recipe",))


def _each_record(line: Line, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Line:
    """``line`` with ``fn`` applied to each record (``fn`` returns a record changed as a
    copy, or the record itself: nothing is copied that does not change)."""
    if "failures" in line:
        return {**line, "failures": [fn(item) for item in line["failures"]]}
    return fn(line)


def _record_down_0001(rec: dict[str, Any]) -> dict[str, Any]:
    if "category_legacy" not in rec and rec.get("blocked_by", []) is not None:
        return rec
    rec = dict(rec)
    if "category_legacy" in rec:
        rec["category"] = rec.pop("category_legacy")
    if "blocked_by" in rec and rec["blocked_by"] is None:
        del rec["blocked_by"]  # v1 states blockers only when it knows some
    return rec


def down_0001(line: Line) -> Line:
    """The v1 line a v2 line (at step 0001, nothing backfilled) came from: the inverse of
    :func:`up_0001` for every line Go or jq wrote."""
    new = _each_record({**line, "schema_version": 1}, _record_down_0001)
    if "failures" not in new:
        new.pop("ecosystem", None)
    return new


# --------------------------------------------------------------------------- step 0002


def backfill(
    rec: dict[str, Any],
    blocked_by: list[str] | None,
    evidence: list[dict[str, Any]],
    reclassified_from: str | None,
) -> dict[str, Any]:
    """A copy of a v2 record with step 0002's findings in place."""
    rec = {**rec, "blocked_by": blocked_by}
    if reclassified_from is not None:
        rec["category"] = "missing_dep"
        rec = _put(rec, "reclassified_from", reclassified_from, _AFTER_CATEGORY)
    if evidence:
        rec["evidence"] = [*rec.get("evidence", []), *evidence]
    return rec


def _record_down_0002(rec: dict[str, Any]) -> dict[str, Any]:
    if "reclassified_from" not in rec and "evidence" not in rec:
        return rec
    rec = dict(rec)
    if "reclassified_from" in rec:
        rec["category"] = rec.pop("reclassified_from")
    if "evidence" in rec:
        own = [ev["names"] for ev in rec.pop("evidence") if ev["source"] == "record"]
        rec["blocked_by"] = own[0] if own else None
    return rec


def down_0002(line: Line) -> Line:
    """The line before step 0002: categories from ``reclassified_from``, and ``blocked_by``
    back to what the record itself stated (its ``record`` evidence: a list, ``[]``
    included) or null."""
    return _each_record(line, _record_down_0002)


# --------------------------------------------------------------------------- flat view

_CATEGORY = {
    **{name: (name, None) for name in CANONICAL_CATEGORIES},
    **{name: (canon, name) for name, canon in LEGACY_CATEGORIES.items()},
}
_TS = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})[:-](\d{2})[:-](\d{2})")


def ts_key(ts: str) -> str:
    """Sortable form of an RFC 3339 UTC timestamp with 0-9 fractional digits."""
    base, _, frac = ts.rstrip("Z").partition(".")
    return base.replace("-", "").replace(":", "") + frac.ljust(9, "0")


def run_id(timestamp: str) -> str | None:
    """``2026-02-07T03:03:36.69Z`` or ``2026-02-07T03-03-36Z`` -> ``2026-02-07T03-03-36Z``."""
    m = _TS.match(timestamp)
    return f"{m.group(1)}T{m.group(2)}-{m.group(3)}-{m.group(4)}Z" if m else None


PackageOf = Callable[[str], "str | None"]


def recipe_ecosystem(ff: FailureFile, line: Line, package_of: PackageOf | None) -> str | None:
    """The ecosystem of a recipe line: its own ``ecosystem`` key (v2, or a newer writer),
    else the file name's (``homebrew.jsonl``, ``homebrew-<ts>``), else the queue's
    (``package_of``: the package a recipe name unambiguously means), else None. Never
    assumed to be homebrew (the upstream dashboard's bug)."""
    if "ecosystem" in line:
        return line["ecosystem"]
    if ff.ecosystem is not None:
        return ff.ecosystem
    pid = package_of(line["recipe"]) if package_of else None
    return pid.partition(":")[0] if pid else None


def recipe_package_id(eco: str | None, recipe: str, package_of: PackageOf | None) -> str | None:
    """The package a recipe line is about: the queue's package of that recipe name when it
    is of the line's ecosystem (``github:sharkdp/bat`` for recipe ``bat``), else
    ``ECOSYSTEM:RECIPE``; None when the ecosystem is unknown."""
    if eco is None:
        return None
    pid = package_of(recipe) if package_of else None
    return pid if pid and pid.startswith(eco + ":") else f"{eco}:{recipe}"


def flat_records(
    ff: FailureFile, lineno: int, line: Line, package_of: PackageOf | None = None
) -> list[dict[str, Any]]:
    """One row per record of a valid line (v1 or v2): where it is, its package id,
    ecosystem and name, scope, platform, category (canonical, legacy name beside it),
    blockers and evidence, message, timestamp and run (see ``migrate.export.COLUMNS``).
    ``package_of`` maps a recipe name to its package id where the queue knows it
    unambiguously (a recipe line's ecosystem in ``batch-*`` files at v1, and its package id
    where the package is not named after the recipe)."""
    version = line["schema_version"]
    out = []
    if "failures" in line:
        run = ff.run or run_id(line["updated_at"])
        for pos, item in enumerate(line["failures"]):
            pid = item["package_id"]
            out.append(
                _row(ff, lineno, pos, item, version, pid, line["ecosystem"], pid.partition(":")[2])
                | {"scope": "package", "platform": line["environment"], "exit_code": None}
                | {"message": item["message"], "run": run}
            )
        return out
    eco = recipe_ecosystem(ff, line, package_of)
    recipe = line["recipe"]
    pid = recipe_package_id(eco, recipe, package_of)
    row = _row(ff, lineno, 0, line, version, pid, eco, recipe)
    row |= {"scope": "platform", "platform": line["platform"], "exit_code": line["exit_code"]}
    row |= {"message": line.get("message"), "run": ff.run or run_id(line["timestamp"])}
    return [row]


def _row(
    ff: FailureFile,
    lineno: int,
    pos: int,
    rec: dict[str, Any],
    version: int,
    pid: str | None,
    eco: str | None,
    name: str,
) -> dict[str, Any]:
    category, legacy = _CATEGORY.get(rec["category"], (rec["category"], None))
    return {
        "file": ff.rel,
        "line": lineno,
        "position": pos,
        "package_id": pid,
        "ecosystem": eco,
        "name": name,
        "category": category,
        "category_legacy": rec.get("category_legacy", legacy),
        "reclassified_from": rec.get("reclassified_from"),
        "blocked_by": rec.get("blocked_by"),
        "evidence": rec.get("evidence", []),
        "timestamp": rec["timestamp"],
        "schema_version": version,
    }
