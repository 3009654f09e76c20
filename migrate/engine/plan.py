"""The plan: which steps a run applies or reverts, as a value.

``plan(ledger, "up", "head")`` can be printed and tested without touching files, and the
same plan drives real runs and dry runs. Targets: ``head``, ``base``, a step id, a unique
id prefix or a step name, ``+N``/``-N``.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrate import __version__
from migrate.errors import LedgerError, UsageError
from migrate.ledger import Ledger
from migrate.steps import STEPS, Step


@dataclass(frozen=True)
class Plan:
    direction: str  # "up" or "down"
    steps: tuple[Step, ...]
    current: str | None
    target: str | None

    def describe(self) -> list[str]:
        if not self.steps:
            return [f"nothing to do: at {self.current or 'base'}"]
        verb = "apply" if self.direction == "up" else "revert"
        return [f"{verb} {s.id} {s.name}: {s.description}" for s in self.steps]


def resolve_target(target: str | None, direction: str, current: str | None) -> str | None:
    """``head``, ``base``, a step id or unique prefix/name, ``+N``/``-N``; None means base."""
    ids = [s.id for s in STEPS]
    pos = ids.index(current) if current else -1
    if target in (None, ""):
        target = "head" if direction == "up" else "-1"
    if target == "head":
        return ids[-1]
    if target == "base":
        return None
    if target[0] in "+-" and target[1:].isdigit():
        new = pos + int(target)
        if new < -1 or new >= len(ids):
            raise UsageError(f"{target}: out of range (at {current or 'base'}, {len(ids)} steps)")
        return ids[new] if new >= 0 else None
    matches = [s.id for s in STEPS if s.id.startswith(target) or s.name == target]
    if len(matches) != 1:
        known = ", ".join(f"{s.id} ({s.name})" for s in STEPS)
        raise UsageError(
            f"unknown step {target!r}" if not matches else f"ambiguous step {target!r}",
            hint=f"known steps: {known}; or head, base, +N, -N",
        )
    return matches[0]


def plan(ledger: Ledger, direction: str, target: str | None = None) -> Plan:
    current = ledger.current
    tgt = resolve_target(target, direction, current)
    ids = [s.id for s in STEPS]
    cur_pos = ids.index(current) if current else -1
    tgt_pos = ids.index(tgt) if tgt else -1
    if direction == "up":
        if tgt_pos < cur_pos:
            raise UsageError(
                f"target {tgt or 'base'} is behind the current version {current}",
                hint="use `migrate down` to go back",
            )
        steps = tuple(STEPS[cur_pos + 1 : tgt_pos + 1])
    else:
        if tgt_pos > cur_pos:
            raise UsageError(
                f"target {tgt} is ahead of the current version {current or 'base'}",
                hint="use `migrate up` to go forward",
            )
        steps = tuple(reversed(STEPS[tgt_pos + 1 : cur_pos + 1]))
    return Plan(direction, steps, current, tgt)


def check_known(ledger: Ledger) -> None:
    """Every step a run names is known to this migrate, and each run's steps are the ones
    between where it started and where it ended, in order (anything else was edited)."""
    ids = [s.id for s in STEPS]
    for run in ledger.runs:
        unknown = [s for s in [*run.steps, run.to, run.from_] if s and s not in ids]
        if unknown:
            raise LedgerError(
                f"the ledger's run {run.id} names step {unknown[0]}, unknown to migrate"
                f" {__version__}; it was written by migrate {run.tool_version}",
                hint=f"install migrate {run.tool_version} or newer",
            )
        start = ids.index(run.from_) + 1 if run.from_ else 0
        end = ids.index(run.to) + 1 if run.to else 0
        expected = ids[start:end] if run.kind == "up" else ids[end:start][::-1]
        if run.steps != expected or run.kind not in ("up", "down"):
            raise LedgerError(
                f"{run.rel}: a {run.kind} run from {run.from_ or 'base'} to"
                f" {run.to or 'base'} lists steps {run.steps}; it was edited by hand",
                hint="restore it from git (git checkout -- data/.migrate)",
            )
