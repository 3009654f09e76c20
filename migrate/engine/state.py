"""Questions about a repo's ledger: the version it is at, its runs, files changed since."""

from __future__ import annotations

from typing import Any

from migrate.engine.plan import file_steps, known_ledger, plan
from migrate.engine.scan import scan
from migrate.ledger import Ledger, Run
from migrate.repo import DataRepo
from migrate.steps import STEPS


def status(repo: DataRepo, jobs: int = 1) -> dict[str, Any]:
    """The version, the steps pending, and the files behind head: other writers' new or
    rewritten files, and the queues whose status must be derived again because of them."""
    ledger = known_ledger(repo)
    the_plan = plan(ledger, "up", "head")
    pending = [s.id for s in the_plan.steps]
    out: dict[str, Any] = {"current": ledger.current, "head": STEPS[-1].id, "pending": pending}
    if ledger.current is not None and not pending:
        found = scan(repo, ledger, jobs)
        by_file = file_steps(repo, the_plan, found).files
        kinds = {s.rel: s.kind for s in found.others}
        why = {
            rel: {"new": "new", "changed": "rewritten"}.get(kinds.get(rel, ""), "derive")
            for rel in by_file
        }
        out["behind"] = {
            "files": len(by_file),  # = new + rewritten + derive
            "new": sum(w == "new" for w in why.values()),
            "rewritten": sum(w == "rewritten" for w in why.values()),
            "derive": sum(w == "derive" for w in why.values()),  # queues to derive again
            "gone": len(found.gone),
            # written by others, needing no step (v2 content): recorded by the next run
            "no_step": sum(rel not in by_file for rel in kinds),
            "list": sorted(
                [
                    *why.items(),
                    *((rel, "no step") for rel in kinds if rel not in by_file),
                    *((rel, "gone") for rel in found.gone),
                ]
            ),
        }
    if ledger.pending is not None:
        run = ledger.pending
        out["unfinished"] = {"run": run.id, "kind": run.kind, "to": run.to}
    return out


def history(repo: DataRepo) -> list[Run]:
    return Ledger.load(repo).runs


def verify(repo: DataRepo, jobs: int = 1) -> list[tuple[str, str]]:
    """Files written by others since the tool last wrote them: rewritten, gone, or new
    (failure files and queues the ledger does not know, once there is a ledger)."""
    ledger = known_ledger(repo)
    states = ledger.states()
    out = []
    if states:
        found = scan(repo, ledger, jobs)
        for seen in found.others:
            state = states.get(seen.rel)
            if seen.kind == "new":
                out.append((seen.rel, "new (not written by migrate)"))
            elif state is not None and state.after == state.origin:
                out.append((seen.rel, "changed since migrate last looked at it"))
            else:
                out.append((seen.rel, "changed since migrate wrote it"))
        out += [(rel, "missing (migrate wrote it)") for rel in found.gone]
        out += [  # (no longer a file a step owns: a folder now, say)
            (rel, "no longer a file migrate rewrites")
            for rel in states
            if rel not in found.files and rel not in found.gone
        ]
    return sorted(out)
