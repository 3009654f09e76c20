"""The registry of migration steps, in order. Adding a step means adding it here.

Each step is a module with one :class:`~migrate.steps.base.Step` subclass; ``up`` and
``down`` are pure functions of a file's bytes (plus the step's context or patch), so the
engine can plan, dry-run, verify round trips and test them without touching disk.
"""

from __future__ import annotations

from migrate.steps.base import Step
from migrate.steps.s0001_records_v2 import RecordsV2
from migrate.steps.s0002_backfill_blocked_by import BackfillBlockedBy
from migrate.steps.s0003_queue_status import QueueStatus

STEPS: list[Step] = [RecordsV2(), BackfillBlockedBy(), QueueStatus()]


def by_id(step_id: str) -> Step:
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(step_id)


def versions_at(step_id: str | None) -> dict[str, int]:
    """The schema version of each family of files once the steps up to ``step_id`` (None:
    base) have run, from what each step declares it produces."""
    out = {"failures": 1, "queues": 1}
    for s in STEPS:
        if step_id is None:
            break
        out[s.family] = s.produces
        if s.id == step_id:
            break
    return out
