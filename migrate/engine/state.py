"""Questions about a repo: the version it is at, its runs, what is behind head and why.

``status``, ``verify`` and ``check --at-head`` agree because they ask the same thing:
what ``up`` would write now (:func:`migrate.engine.up.compute`, read-only). A file
another writer added or rewrote that needs no step (a ``migrate ingest`` file, a queue
tsuku's jobs saved whose statuses already are the fixed point) is at head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate import codec
from migrate.engine.plan import known_ledger, plan
from migrate.engine.recipes import resolve_recipes
from migrate.steps import REGISTRY
from migrate.steps.base import Family, RunOptions
from migrate.store.ledger import Ledger, Run


@dataclass
class Behind:
    """What ``up`` would write at head, file by file, with why."""

    files: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    others: list[tuple[str, str]] = field(default_factory=list)  # at head, others' (info)
    computed: Any = None  # the read-only up it was computed from

    @property
    def count(self) -> int:
        return len(self.files)


def behind(store, ledger: Ledger, jobs: int = 1, known=None) -> Behind:
    """The files ``up`` would change at head, and the files others wrote that are at head
    (only asked at head: with steps pending every file is behind)."""
    from migrate.engine.compute import compute

    options = resolve_recipes(store, ledger, RunOptions())
    done = compute(store, ledger, "head", options, jobs=jobs, known=known)
    state = ledger.state()
    out = Behind(computed=done)
    for o in done.changes:
        if Family.of(o.rel) is Family.QUEUES:
            entries = next(iter(codec.loads(o.record)["patch"].values())).get("entries", [])
            n = sum("status" in e for e in entries)
            why = f"{n} status(es) to derive" if n else "holds blocked_by written by migrate 0.3"
        elif o.rel in state:
            why = "rewritten at v1 by another writer since migrate wrote it"
        else:
            why = "new: added by another writer"
        out.files.append((o.rel, why))
    changed = {o.rel for o in done.changes}
    for rel, seen in done.seen.items():
        if rel not in changed and rel not in state and (seen.version or 2) >= 2:
            out.others.append((rel, "written at v2 by another writer: no step needed"))
    for rel, fs in state.items():
        family = Family.of(rel)  # (the survey listed every failure file: no stat each)
        if (rel not in done.seen) if family is Family.FAILURES else not store.exists(rel):
            out.others.append((rel, "deleted by another writer since migrate wrote it"))
        elif family is Family.QUEUES and rel not in changed:
            saved = _saved_since(store, rel, fs)
            if saved:
                out.others.append((rel, saved))
    out.files.sort()
    out.others.sort()
    return out


def _saved_since(store, rel: str, fs) -> str | None:
    """A queue whose ``updated_at`` is not the one migrate last wrote into it."""
    from migrate import codec

    last = [a.patch for a in fs.applied if a.patch and "header" in a.patch]
    if not last:
        return None
    wrote = last[-1]["header"].get("updated_at", [None, None])[1]
    try:
        now = codec.loads(store.read_bytes(rel)).get("updated_at")
    except Exception:  # noqa: BLE001 - (a queue that does not read: check names it)
        return None
    if now == wrote:
        return None
    return "saved by another writer since migrate last wrote it; its statuses are derived (at head)"


def status(store, jobs: int = 1) -> dict[str, Any]:
    """The version, the steps pending, and the files behind head."""
    ledger = known_ledger(store)
    pending = [s.id for s in plan(ledger, "up", "head").steps]
    out: dict[str, Any] = {"current": ledger.current, "head": REGISTRY.head, "pending": pending}
    if ledger.pending is not None:
        run = ledger.pending
        out["unfinished"] = {"run": run.id, "kind": run.kind, "to": run.to}
    elif ledger.current is not None and not pending:
        b = behind(store, ledger, jobs)
        out["behind"] = {
            "files": b.count,
            "failures": sum(Family.of(p) is Family.FAILURES for p, _ in b.files),
            "queues": sum(Family.of(p) is Family.QUEUES for p, _ in b.files),
            "list": [{"path": p, "why": w} for p, w in b.files],
            "others": [{"path": p, "why": w} for p, w in b.others],
        }
    return out


def history(store) -> list[Run]:
    return Ledger.load(store).runs


def verify(store, jobs: int = 1) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(files behind head, with why; files others wrote that are at head, with why). A
    run left unfinished is behind too."""
    ledger = known_ledger(store)
    if ledger.pending is not None:
        run = ledger.pending
        return [
            (
                run.rel,
                f"run {run.id} ({run.kind}) was interrupted: the next `migrate up`"
                " or `migrate down` finishes it",
            )
        ], []
    if ledger.current is None:
        return [], []
    if plan(ledger, "up", "head").steps:
        return [("data", f"steps pending (the repo is at {ledger.current})")], []
    b = behind(store, ledger, jobs)
    return b.files, b.others
