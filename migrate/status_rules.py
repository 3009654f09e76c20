"""Queue status rules (design.md, "Queue status rules"): a pure function per entry.

The rebuild repairs the *blocked* dimension of status and leaves the retry lifecycle
(``failed`` -> ``pending`` after a backoff, ``failure_count``, ``next_retry_at``) alone.
Step 0003 applies :func:`decide` to every entry; ``migrate explain`` prints its ``rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

#: Decisions made elsewhere: never changed by the rebuild.
FIXED_STATUSES = frozenset({"success", "excluded", "requires_manual", "skipped"})


class Latest(NamedTuple):
    """The latest package-scope failure of one package id (after backfill). (A named tuple:
    one per package and file crosses from the workers to the main process.)"""

    ts: str  # sortable key
    timestamp: str
    category: str
    blocked_by: list[str] | None
    where: str  # "file:line"


@dataclass(frozen=True)
class Decision:
    status: str
    blocked_by: list[str] | None  # meaningful only when status == "blocked"
    rule: str

    def changed(self, entry: dict[str, Any]) -> bool:
        if self.status != entry["status"]:
            return True
        if self.status == "blocked":
            return "blocked_by" not in entry or entry["blocked_by"] != self.blocked_by
        return "blocked_by" in entry


def decide(status: str, latest: Latest | None, resolved: set[str]) -> Decision:
    """The status an entry must have, given its latest failure and the resolved names.

    ``resolved`` holds every name with a ``success`` entry in the same queue (and, with
    ``--recipes``, every name a recipe on disk provides).
    """
    if status in FIXED_STATUSES:
        return Decision(status, None, f"{status} is decided elsewhere: never changed")
    if latest is None:
        return Decision(status, None, "no package-scope failure for this id: unchanged")
    about = f"latest failure {latest.where} ({latest.timestamp}, {latest.category})"
    if latest.blocked_by or latest.category == "missing_dep":
        if not latest.blocked_by:
            return Decision("blocked", None, f"{about} is missing_dep, blockers unknown: blocked")
        unresolved = [n for n in latest.blocked_by if n not in resolved]
        if unresolved:
            return Decision(
                "blocked",
                unresolved,
                f"{about} names blockers; unresolved (no success entry or recipe):"
                f" {', '.join(unresolved)}: blocked",
            )
        if status == "blocked":
            return Decision(
                "pending",
                None,
                f"{about}: every blocker ({', '.join(latest.blocked_by)}) now has a recipe:"
                " requeued as pending",
            )
        return Decision(status, None, f"{about}: every blocker resolved; not blocked: unchanged")
    if status == "blocked":
        return Decision("failed", None, f"{about} is not a dependency miss: blocked -> failed")
    return Decision(status, None, f"{about} is not a dependency miss: unchanged")


def recipe_names(recipes_dir: str | Path) -> set[str]:
    """Names a recipes tree provides: every ``NAME.toml`` and every name declared under
    ``[metadata.satisfies]`` (a map of ecosystem -> names, e.g. ``homebrew = ["openssl@3"]``).
    """
    import tomllib

    from migrate.errors import UsageError

    if not Path(recipes_dir).is_dir():
        raise UsageError(f"{recipes_dir}: not a directory (--recipes takes the recipes tree)")
    names: set[str] = set()
    for path in sorted(Path(recipes_dir).rglob("*.toml")):
        names.add(path.stem)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        if isinstance(meta.get("name"), str):
            names.add(meta["name"])
        satisfies = meta.get("satisfies") if isinstance(meta.get("satisfies"), dict) else {}
        for value in satisfies.values():
            if isinstance(value, list):
                names.update(v for v in value if isinstance(v, str))
            elif isinstance(value, str):
                names.add(value)
    return names
