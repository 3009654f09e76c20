"""Queue status rules (design.md, "Queue status rules"): pure functions per entry.

Status is decided as a **fixed point of tsuku's own queue rules** (formats.md section 7),
so that tsuku's queue-maintain, run after every push, changes none of the statuses decided
here, and a catch-up after its save has nothing to write:

* tsuku reads records per *bare name* (a ``package_id`` after its first colon, or a
  per-recipe line's ``recipe``): the blockers of a name are the union of ``blocked_by``
  over all its records (:class:`NameRecords`);
* ``success``, ``excluded``, ``requires_manual``, ``skipped``: decided elsewhere, never
  changed;
* a ``blocked`` entry is requeued (``pending``) when its name's records name blockers and
  every one is resolved (:class:`Resolved`: a ``success`` entry of that name, or one whose
  recipe is on disk) - unless queue-maintain would mark it ``failed`` at once (its records
  outnumber its ``failure_count`` and none is a ``missing_dep`` naming blockers); with no
  recorded blockers it stays blocked, as tsuku keeps it;
* a ``pending`` or ``failed`` entry is ``blocked`` when some record of its name is a
  ``missing_dep`` naming blockers (markfailures' test) and a blocker is unresolved;
* nothing else changes: the retry lifecycle (``failed`` -> ``pending`` after a backoff,
  ``failure_count``, ``next_retry_at``) is queue-maintain's.

The tool also has a judgement of its own (:func:`judge`): the latest package record of the
exact package id decides. Where the two differ (a bare name shared across ecosystems, a
``missing_dep`` long past that stays sticky, blockers only older records name, blockers
nobody recorded), the difference is a :class:`Finding`, shown with both reasons by
``check``, ``report`` and ``explain`` for a maintainer to fix upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class NameRecords:
    """What every record of one bare name says, as tsuku's queue-maintain reads it."""

    #: records markfailures counts (envelope items; per-recipe lines with a category)
    count: int = 0
    #: where a ``missing_dep`` record naming blockers is ("file:line"; None: no such record)
    missing_dep_at: str | None = None
    #: the union of ``blocked_by`` over every record, in first-seen order
    blockers: list[str] = field(default_factory=list)
    #: the package ids the records are about (two ecosystems can share a bare name)
    ids: list[str] = field(default_factory=list)

    def add(self, other: NameRecords) -> None:
        """Fold in the records of a later file."""
        self.count += other.count
        self.missing_dep_at = self.missing_dep_at or other.missing_dep_at
        self.blockers.extend(n for n in other.blockers if n not in self.blockers)
        self.ids.extend(i for i in other.ids if i not in self.ids)

    def to_json(self) -> list[Any]:
        return [self.count, self.missing_dep_at, self.blockers, self.ids]

    @classmethod
    def from_json(cls, v: list[Any]) -> NameRecords:
        return cls(v[0], v[1], list(v[2]), list(v[3]))


def bare_name(package_id: str) -> str:
    """tsuku's key for a package id: what follows its first colon."""
    return package_id.partition(":")[2] or package_id


def name_records(rows: list[dict[str, Any]], rel: str) -> dict[str, NameRecords]:
    """Per bare name, what one file's records say (rows: :func:`migrate.records.flat_records`;
    a per-recipe line counts when it has a category, as markfailures counts it)."""
    out: dict[str, NameRecords] = {}
    for row in rows:
        if row["scope"] == "platform" and not row["category"]:
            continue
        name = row["name"] if row["scope"] == "platform" else bare_name(row["package_id"])
        if not name:
            continue
        nr = out.setdefault(name, NameRecords())
        nr.count += 1
        names = row["blocked_by"] or []
        nr.blockers.extend(n for n in names if n not in nr.blockers)
        pid = row["package_id"] or f"?:{row['name']}"
        if pid not in nr.ids:
            nr.ids.append(pid)
        if names and row["category"] == "missing_dep" and nr.missing_dep_at is None:
            nr.missing_dep_at = f"{rel}:{row['line']}"
    return out


@dataclass(frozen=True)
class Resolved:
    """The names a blocker counts as resolved by.

    ``tsuku``: what tsuku's rules see once its workflow's reconcile pass has run: the
    names of ``success`` entries, and the entries whose recipe file is on disk
    (``recipes/*/NAME.toml``: reconcile sets them to ``success``). ``tool``: the tool's
    own judgement adds every name the recipes tree provides (a recipe with no queue
    entry, a ``[metadata.satisfies]`` alias), which tsuku's requeue never reads."""

    tsuku: frozenset[str]
    tool: frozenset[str]

    @classmethod
    def of(cls, entries: list[dict[str, Any]], stems: set[str], provided: set[str]) -> Resolved:
        names = {e.get("name") for e in entries}
        success = {e["name"] for e in entries if e.get("status") == "success"}
        tsuku = frozenset(success | (stems & names))
        return cls(tsuku, tsuku | frozenset(stems | provided))


@dataclass(frozen=True)
class Decision:
    status: str
    rule: str


def _names(names: list[str]) -> str:
    return ", ".join(names) or "(none)"


def decide(
    status: str, failure_count: int | None, rec: NameRecords | None, resolved: Resolved
) -> Decision:
    """The status an entry keeps or gets (see the module's rules). ``failure_count``: the
    entry's, None for a legacy queue (which queue-maintain does not maintain)."""
    if status in FIXED_STATUSES:
        return Decision(status, f"{status} is decided elsewhere: never changed")
    if rec is None or rec.count == 0:
        return Decision(status, "no failure record of this name: unchanged")
    blockers = rec.blockers
    unresolved = [n for n in blockers if n not in resolved.tsuku]
    if status == "blocked":
        if not blockers:
            return Decision(
                "blocked", "no record of this name names a blocker: stays blocked (tsuku's rule)"
            )
        if unresolved:
            return Decision(
                "blocked",
                f"blockers over all its records: {_names(blockers)}; unresolved (no success"
                f" entry, no recipe): {_names(unresolved)}: stays blocked",
            )
        if failure_count is not None and rec.count > failure_count and not rec.missing_dep_at:
            return Decision(
                "blocked",
                f"every blocker ({_names(blockers)}) is resolved, but its {rec.count} records"
                f" outnumber its failure_count {failure_count} and none is a missing_dep"
                " naming blockers: queue-maintain would mark it failed at once: stays blocked",
            )
        return Decision(
            "pending",
            f"every blocker over all its records ({_names(blockers)}) is resolved:"
            " requeued as pending",
        )
    if rec.missing_dep_at and unresolved:
        return Decision(
            "blocked",
            f"missing_dep record {rec.missing_dep_at} names blockers; over all its records"
            f" {_names(blockers)}, unresolved: {_names(unresolved)}: blocked",
        )
    if rec.missing_dep_at:
        return Decision(status, f"every blocker ({_names(blockers)}) is resolved: unchanged")
    return Decision(status, "no missing_dep record naming blockers: unchanged")


BLOCKED, NOT_BLOCKED = "blocked", "not blocked"


def judge(latest: Latest | None, resolved: Resolved) -> Decision:
    """The tool's own judgement of whether an entry is blocked: by the latest package
    record of its exact package id alone (what step 0003 decided before it followed
    tsuku's rules), with every name a recipe provides resolved."""
    if latest is None:
        return Decision(NOT_BLOCKED, "no package record of this exact id names a blocker")
    about = f"its latest record {latest.where} ({latest.timestamp}, {latest.category})"
    if not latest.blocked_by and latest.category == "missing_dep":
        return Decision(BLOCKED, f"{about} is a missing_dep whose blockers are unknown")
    if not latest.blocked_by:
        return Decision(NOT_BLOCKED, f"{about} is not a dependency miss")
    unresolved = [n for n in latest.blocked_by if n not in resolved.tool]
    if unresolved:
        return Decision(BLOCKED, f"{about} names unresolved {_names(unresolved)}")
    return Decision(
        NOT_BLOCKED, f"{about} names only resolved blockers ({_names(latest.blocked_by)})"
    )


@dataclass(frozen=True)
class Finding:
    """An entry whose status by tsuku's rules differs from the tool's own judgement."""

    queue: str
    package_id: str
    status: str  # by tsuku's rules (what the queue holds after step 0003)
    rule: str
    judged: str  # the tool's judgement
    judged_rule: str
    kind: str  # what makes them differ (a short label)
    records: tuple[str, ...] = ()  # the package ids whose records tsuku's rule reads

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "package_id": self.package_id,
            "status": self.status,
            "rule": self.rule,
            "judged": self.judged,
            "judged_rule": self.judged_rule,
            "kind": self.kind,
            "records": list(self.records),
        }

    def __str__(self) -> str:
        return (
            f"{self.queue}: {self.package_id} is {self.status} by tsuku's rules ({self.rule});"
            f" migrate's own judgement says {self.judged} ({self.judged_rule}) [{self.kind}]"
        )


def finding(
    queue: str,
    package_id: str,
    decision: Decision,
    judged: Decision,
    rec: NameRecords | None,
    latest: Latest | None,
    resolved: Resolved,
) -> Finding | None:
    """The difference between the two (blocked or not), if any, with a label saying why
    they differ. Decisions made elsewhere (success, ...) are nobody's to differ on."""
    if decision.status in FIXED_STATUSES:
        return None
    if (decision.status == BLOCKED) == (judged.status == BLOCKED):
        return None
    ids = tuple(rec.ids) if rec else ()
    others = [i for i in ids if i != package_id]
    by_recipe = [
        n for n in (rec.blockers if rec else []) if n in resolved.tool and n not in resolved.tsuku
    ]
    if decision.status == "blocked" and by_recipe:
        kind = (
            f"{', '.join(by_recipe)} provided by a recipe tsuku's requeue does not read"
            " (no queue entry of that name, or a satisfies alias)"
        )
    elif latest is None and others:
        kind = "bare name shared with another package"
    elif decision.status == "blocked" and not (rec and rec.blockers):
        kind = "blocked with no recorded blocker (tsuku keeps it blocked)"
    elif judged.status == BLOCKED and latest is not None and not latest.blocked_by:
        kind = "missing_dep with unknown blockers (tsuku marks it failed)"
    elif decision.status == "blocked" and latest is not None and latest.category != "missing_dep":
        kind = "sticky missing_dep (an older record keeps it blocked)"
    elif decision.status == "blocked":
        kind = "blockers older records name (tsuku takes the union over history)"
    else:
        kind = "resolution differs"
    return Finding(
        queue, package_id, decision.status, decision.rule, judged.status, judged.rule, kind, ids
    )


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
