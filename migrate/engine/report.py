"""What a run did, for the command line and the tests: per step, per file (dry runs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.plan import Plan
from migrate.steps.base import Step


@dataclass
class StepReport:
    step: Step
    direction: str
    totals: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    files_read: int = 0
    changed_files: int = 0
    #: lines (or files) whose original the ledger keeps, by the step's declared reason
    kept: Counter[str] = field(default_factory=Counter)


@dataclass
class RunReport:
    plan: Plan
    dry_run: bool
    steps: list[StepReport] = field(default_factory=list)
    #: dry runs: (path, diff) of every file the run would change
    files: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    settled: str | None = None  # an interrupted run finished first
    run_id: str | None = None
    #: down: how many files each rule reverts, and the files not given their exact bytes
    #: back, as (path, rule, counts of what went back and what stayed)
    rules: Counter[str] = field(default_factory=Counter)
    rule_files: list[tuple[str, str, dict[str, int]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # dry runs: what a down would refuse
    #: files another writer saved or deleted while the run ran: left as they left them
    theirs: list[str] = field(default_factory=list)

    def final_line(self) -> str:
        """The one line every command that writes ends with: where the repo is."""
        if self.refused:
            return (
                f"a down would stop here: {len(self.refused)} file(s) cannot be reverted"
                " without overwriting another writer's values; nothing would be reverted"
            )
        if not self.plan.steps:
            return self.plan.describe()[0]
        if self.dry_run:
            return f"dry run: nothing written; the repo stays at {self.plan.current or 'base'}"
        return f"now at {self.plan.target or 'base'} ({self.seconds:.2f}s)"

    def as_dict(self) -> dict[str, Any]:
        """Everything, nothing cut (``--format json``)."""
        return {
            "direction": self.plan.direction,
            "dry_run": self.dry_run,
            "from": self.plan.current,
            "to": self.plan.target,
            "plan": self.plan.describe(),
            "settled": self.settled,
            "steps": [
                {
                    "id": sr.step.id,
                    "name": sr.step.name,
                    "files_read": sr.files_read,
                    "files_changed": sr.changed_files,
                    "changes": dict(sorted(sr.totals.items())),
                    "kept_by_reason": dict(sorted(sr.kept.items())),
                    "notes": sr.notes,
                }
                for sr in self.steps
            ],
            "files": [{"path": p, **({"diff": d} if d else {})} for p, d in self.files],
            "rules": dict(self.rules),
            "rule_files": [{"path": p, "rule": r, "counts": c} for p, r, c in self.rule_files],
            "refused": self.refused,
            "theirs": self.theirs,
            "run": self.run_id,
            "seconds": round(self.seconds, 3),
            "final": self.final_line(),
        }
