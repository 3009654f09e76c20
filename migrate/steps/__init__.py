"""The registry of migration steps: an ordered value, checked when it is built.

Adding a step means writing its module (one :class:`~migrate.steps.base.Step` subclass,
with its line or record functions in :mod:`migrate.records`) and adding it here. The
registry's order is the order steps apply; ids are compared by their place in it, never
as strings. A run goes through the families in the order of :class:`Family` (queue status
derives from the records as the failure steps leave them), whatever the ids. The registry
refuses, when built: ids out of order or repeated, a step that is neither a line step nor
a derived one, and a derived step that is not the last of its family (it runs again in
every ``up``: a step of its family after it would be undone and applied again each time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from migrate.steps.base import DerivedStep, Family, LineStep, Step
from migrate.steps.s0001_records_v2 import RecordsV2
from migrate.steps.s0002_backfill_blocked_by import BackfillBlockedBy
from migrate.steps.s0003_queue_status import QueueStatus


class RegistryError(ValueError):
    """A registry that breaks one of the rules above (a bug in migrate)."""


class Registry(Sequence[Step]):
    def __init__(self, steps: list[Step]):
        self.steps = tuple(steps)
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids) or ids != sorted(ids):
            raise RegistryError(f"step ids must be unique and in order: {ids}")
        for fam in Family:
            of = self.of(fam)
            for s in of[:-1]:
                if s.derived:
                    raise RegistryError(f"derived step {s.id} must be the last of its family")
            for s in of:
                if not isinstance(s, DerivedStep if s.derived else LineStep):
                    raise RegistryError(
                        f"step {s.id}: a derived step is a DerivedStep, else a LineStep"
                    )
        self._pos = {sid: i for i, sid in enumerate(ids)}

    def __getitem__(self, i):  # type: ignore[override]
        return self.steps[i]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.steps]

    @property
    def head(self) -> str:
        return self.steps[-1].id

    def get(self, step_id: str | None) -> Step | None:
        pos = self._pos.get(step_id or "")
        return None if pos is None else self.steps[pos]

    def pos(self, step_id: str | None) -> int:
        """The place of a step id (-1: base, None). Unknown ids raise KeyError."""
        return -1 if step_id is None else self._pos[step_id]

    def upto(self, step_id: str | None) -> list[Step]:
        """The steps applied once the repo is at ``step_id`` (None: base)."""
        return list(self.steps[: self.pos(step_id) + 1])

    def between(self, low: str | None, high: str | None) -> list[Step]:
        """The steps after ``low`` up to ``high``, in order."""
        return list(self.steps[self.pos(low) + 1 : self.pos(high) + 1])

    def of(self, family: Family) -> list[Step]:
        return [s for s in self.steps if s.family is family]

    def first_of_family(self, step: Step) -> bool:
        return self.of(step.family)[0] is step

    def versions_at(self, step_id: str | None) -> dict[Family, int]:
        """The schema version of each family's lines once the steps up to ``step_id``
        have run (derived families have none of their own: 1)."""
        out = {fam: 1 for fam in Family}
        for s in self.upto(step_id):
            if isinstance(s, LineStep):
                out[s.family] = s.produces
        return out


REGISTRY = Registry([RecordsV2(), BackfillBlockedBy(), QueueStatus()])
