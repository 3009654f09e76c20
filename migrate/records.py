"""v1 -> v2 record conversion and back: the pure core of step 0001.

A v2 record keeps every v1 value (the raw ``timestamp``, the legacy category name in
``category_legacy``, ``blocked_by`` only when the v1 record had it), so each v1 record
can be rebuilt exactly; what is not a record's own (its envelope, line layout) is kept
in the step's ledger patch.
"""

from __future__ import annotations

import re
from typing import Any

from migrate.models import CANONICAL_CATEGORIES, LEGACY_CATEGORIES

#: Upstream cuts messages at 500 bytes (on a rune boundary) and appends "...".
TRUNCATE_BYTES = 500


class ConversionError(ValueError):
    """A v1 value that has no v2 equivalent; ``field`` names it."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field


def canonical_category(name: str, field: str = "category") -> tuple[str, str | None]:
    """(canonical category, legacy name or None) for a v1 category."""
    if name in CANONICAL_CATEGORIES:
        return name, None
    if name in LEGACY_CATEGORIES:
        return LEGACY_CATEGORIES[name], name
    raise ConversionError(field, f"unknown category {name!r} (no canonical equivalent)")


def is_truncated(message: str) -> bool:
    """True when the message was cut by the orchestrator's 500-byte limit."""
    if not message.endswith("..."):
        return False
    body = len(message.encode("utf-8")) - 3
    return TRUNCATE_BYTES - 3 <= body <= TRUNCATE_BYTES


_TS = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})[:-](\d{2})[:-](\d{2})")


def run_id(timestamp: str) -> str | None:
    """``2026-02-07T03:03:36.69Z`` or ``2026-02-07T03-03-36Z`` -> ``2026-02-07T03-03-36Z``."""
    m = _TS.match(timestamp)
    return f"{m.group(1)}T{m.group(2)}-{m.group(3)}-{m.group(4)}Z" if m else None


def record_evidence(rel: str, lineno: int, names: list[str]) -> list[dict[str, Any]]:
    if not names:
        return []
    return [
        {
            "source": "record",
            "names": list(names),
            "detail": "blocked_by of the original (v1) record",
            "file": rel,
            "line": lineno,
        }
    ]


#: v1 category name -> (canonical category, legacy name or None), for every name v1 allows
_CATEGORY = {
    **{name: (name, None) for name in CANONICAL_CATEGORIES},
    **{name: (canon, name) for name, canon in LEGACY_CATEGORIES.items()},
}


def canonical_or_none(name: str) -> str | None:
    """The canonical category of a v1 category name, or None for a name v1 does not allow."""
    pair = _CATEGORY.get(name)
    return pair[0] if pair else None


def from_envelope(
    env: dict[str, Any], rel: str, lineno: int, file_run: str | None
) -> list[dict[str, Any]]:
    """One v2 record per item of a Shape A envelope (validated by ``EnvelopeV1``'s rules,
    as dicts: optional keys may be absent), in order. (Every v1 line of the history goes
    through here: lookups are hoisted out of the loop.)"""
    out = []
    run = file_run or run_id(env["updated_at"])
    platform = env["environment"]
    categories = _CATEGORY
    for i, item in enumerate(env["failures"]):
        pair = categories.get(item["category"])
        if pair is None:
            pair = canonical_category(item["category"], f"failures[{i}].category")  # raises
        if item.get("subcategory") is not None:
            raise ConversionError(f"failures[{i}].subcategory", "subcategory has no v2 field")
        package_id = item["package_id"]
        eco, sep, name = package_id.partition(":")
        if not sep or not eco or not name:
            raise ConversionError(f"failures[{i}].package_id", "package_id is not ECOSYSTEM:NAME")
        blocked = item.get("blocked_by")
        message = item["message"]
        out.append(
            {
                "schema_version": 2,
                "package_id": package_id,
                "ecosystem": eco,
                "name": name,
                "scope": "package",
                "platform": platform,
                "category": pair[0],
                "category_legacy": pair[1],
                "reclassified_from": None,
                "exit_code": None,
                "blocked_by": blocked,
                "evidence": record_evidence(rel, lineno, blocked) if blocked else [],
                "message": message,
                "message_truncated": message.endswith("...") and is_truncated(message),
                "timestamp": item["timestamp"],
                "run": run,
            }
        )
    return out


def from_platform_line(
    line: dict[str, Any],
    rel: str,
    lineno: int,
    package_id: str | None,
    file_run: str | None,
) -> dict[str, Any]:
    """The v2 record of a Shape B line (validated by ``PlatformLineV1``'s rules, as a dict:
    ``blocked_by`` may be absent); ``package_id`` is None when the ecosystem is unknown."""
    category, legacy = canonical_category(line["category"])
    blocked = line.get("blocked_by")
    return {
        "schema_version": 2,
        "package_id": package_id,
        "ecosystem": package_id.partition(":")[0] if package_id else None,
        "name": line["recipe"],
        "scope": "platform",
        "platform": line["platform"],
        "category": category,
        "category_legacy": legacy,
        "reclassified_from": None,
        "exit_code": line["exit_code"],
        "blocked_by": blocked,
        "evidence": record_evidence(rel, lineno, blocked or []),
        "message": None,
        "message_truncated": False,
        "timestamp": line["timestamp"],
        "run": file_run or run_id(line["timestamp"]),
    }


def to_envelope_item(rec: dict[str, Any]) -> dict[str, Any]:
    """The v1 Shape A item a v2 package record came from (key order as the Go writer)."""
    item: dict[str, Any] = {
        "package_id": rec["package_id"],
        "category": rec["category_legacy"] or rec["category"],
    }
    if rec["blocked_by"] is not None:
        item["blocked_by"] = rec["blocked_by"]
    item["message"] = rec["message"]
    item["timestamp"] = rec["timestamp"]
    return item


def to_platform_line(rec: dict[str, Any]) -> dict[str, Any]:
    """The v1 Shape B line a v2 platform record came from (key order as the jq writer)."""
    line: dict[str, Any] = {
        "schema_version": 1,
        "recipe": rec["name"],
        "platform": rec["platform"],
        "exit_code": rec["exit_code"],
        "category": rec["category_legacy"] or rec["category"],
    }
    if rec["blocked_by"] is not None:
        line["blocked_by"] = rec["blocked_by"]
    line["timestamp"] = rec["timestamp"]
    return line
