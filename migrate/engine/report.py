"""What a run did, for the command line and the tests: per step, per file (dry runs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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
