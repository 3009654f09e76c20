"""Questions about a repo's ledger: the version it is at, its runs, files changed since."""

from __future__ import annotations

from typing import Any

from migrate.engine.plan import check_known, plan
from migrate.ledger import Ledger, Run, checksum
from migrate.repo import DataRepo
from migrate.steps import STEPS


def status(repo: DataRepo) -> dict[str, Any]:
    ledger = Ledger.load(repo)
    check_known(ledger)
    pending = [s.id for s in plan(ledger, "up", "head").steps]
    out: dict[str, Any] = {"current": ledger.current, "head": STEPS[-1].id, "pending": pending}
    if ledger.pending is not None:
        run = ledger.pending
        out["unfinished"] = {"run": run.id, "kind": run.kind, "to": run.to}
    return out


def history(repo: DataRepo) -> list[Run]:
    return Ledger.load(repo).runs


def verify(repo: DataRepo) -> list[tuple[str, str]]:
    """Files migrate wrote whose bytes differ from what it left there."""
    out = []
    for path, fs in sorted(Ledger.load(repo).states().items()):
        if fs.after == fs.origin:
            continue  # migrate looked at it and left it as it was
        if not repo.exists(path):
            out.append((path, "missing (migrate wrote it)"))
        elif checksum(repo.read_bytes(path)) != fs.after:
            out.append((path, "changed since migrate wrote it"))
    return out
