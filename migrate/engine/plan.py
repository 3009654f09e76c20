"""The plan: which steps a run applies or reverts, and to which files, as a value.

``plan(ledger, "up", "head")`` can be printed and tested without touching files, and the
same plan drives real runs and dry runs. Targets: ``head``, ``base``, a step id, a unique
id prefix or a step name, ``+N``/``-N``. An ``up`` is then made file by file
(:func:`for_files`) from what each file's content says (:mod:`.lifecycle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import __version__
from migrate.engine.lifecycle import line_steps
from migrate.errors import LedgerError, UsageError
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import Family, Step
from migrate.store.ledger import Ledger


@dataclass(frozen=True)
class Plan:
    direction: str  # "up" or "down"
    steps: tuple[Step, ...]  # the steps the run applies (or reverts), in order
    current: str | None
    target: str | None
    #: up: each file's steps (files with none are absent)
    files: dict[str, tuple[Step, ...]] = field(default_factory=dict, compare=False)
    #: up at the repo's version: the failure files others wrote that need steps
    others: tuple[str, ...] = ()

    @property
    def moves(self) -> bool:
        """Whether the repo's version changes."""
        return self.current != self.target

    def describe(self) -> list[str]:
        verb = "apply" if self.direction == "up" else "revert"
        if not self.steps:
            return [f"nothing to do: at {self.current or 'base'}"]
        if self.direction == "up" and not self.moves:
            out = [
                f"catch up at {self.current}: {len(self.others)} failure file(s) other"
                " writers added or rewrote at v1; queue status derived again"
            ]
            for s in self.steps:
                n = sum(s in steps for steps in self.files.values())
                out.append(f"{verb} {s.id} {s.name} to {n} file(s): {s.description}")
            return out
        return [f"{verb} {s.id} {s.name}: {s.description}" for s in self.steps]


def resolve_target(
    target: str | None, direction: str, current: str | None, registry: Registry = REGISTRY
) -> str | None:
    """``head``, ``base``, a step id or unique prefix/name, ``+N``/``-N``; None means base."""
    ids = registry.ids
    pos = registry.pos(current)
    if target in (None, ""):
        if direction == "down" and current is None:
            return None  # (at base, the default down has nothing to do)
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
    matches = [s.id for s in registry if s.id.startswith(target) or s.name == target]
    if len(matches) != 1:
        known = ", ".join(f"{s.id} ({s.name})" for s in registry)
        raise UsageError(
            f"unknown step {target!r}" if not matches else f"ambiguous step {target!r}",
            hint=f"known steps: {known}; or head, base, +N, -N",
        )
    return matches[0]


def plan(
    ledger: Ledger, direction: str, target: str | None = None, registry: Registry = REGISTRY
) -> Plan:
    current = ledger.current
    tgt = resolve_target(target, direction, current, registry)
    cur_pos, tgt_pos = registry.pos(current), registry.pos(tgt)
    if direction == "up":
        if tgt_pos < cur_pos:
            raise UsageError(
                f"target {tgt or 'base'} is behind the current version {current}",
                hint="use `migrate down` to go back",
            )
        steps = tuple(registry.between(current, tgt))
    else:
        if tgt_pos > cur_pos:
            raise UsageError(
                f"target {tgt} is ahead of the current version {current or 'base'}",
                hint="use `migrate up` to go forward",
            )
        steps = tuple(reversed(registry.between(tgt, current)))
    return Plan(direction, steps, current, tgt)


def for_files(
    the_plan: Plan,
    versions: dict[str, int | None],
    queues: list[str],
    registry: Registry = REGISTRY,
) -> Plan:
    """``the_plan`` (an ``up``) made file by file: each failure file (``versions``: its
    lowest line version) gets the line steps its content lacks (:func:`line_steps`); each
    queue the derived step, whenever the target includes it (it writes only what changes)."""
    files: dict[str, tuple[Step, ...]] = {}
    others = []
    for rel, version in versions.items():
        steps = line_steps(version, the_plan.current, the_plan.target, registry)
        if steps:
            files[rel] = tuple(steps)
            if not the_plan.moves:
                others.append(rel)
    derived = [s for s in registry.upto(the_plan.target) if s.derived]
    for rel in queues:
        if derived:
            files[rel] = tuple(derived)
    used = {s for steps in files.values() for s in steps}
    planned = set(the_plan.steps)  # (the repo's version moves even where a step has no file)
    steps = tuple(s for s in registry if s in planned or s in used)
    return Plan(the_plan.direction, steps, the_plan.current, the_plan.target, files, tuple(others))


def family_of(rel: str) -> Family:
    return Family.of(rel)


def known_ledger(store, registry: Registry = REGISTRY) -> Ledger:
    """The repo's ledger, for a command that reads the data through it: refused (exit 4)
    where a run names a step this migrate does not know (a newer one wrote it) or was
    edited (``history`` alone lists such runs)."""
    ledger = Ledger.load(store)
    check_known(ledger, registry)
    return ledger


def check_known(ledger: Ledger, registry: Registry = REGISTRY) -> None:
    """Every step a run names is known to this migrate, and each run's steps are the ones
    between where it started and where it ended, in order (anything else was edited)."""
    for run in ledger.runs:
        unknown = [s for s in [*run.steps, run.to, run.from_] if s and registry.get(s) is None]
        if unknown:
            raise LedgerError(
                f"the ledger's run {run.id} names step {unknown[0]}, unknown to migrate"
                f" {__version__}; it was written by migrate {run.tool_version}",
                hint=f"install migrate {run.tool_version} or newer",
            )
        between = [s.id for s in registry.between(run.from_, run.to)]
        ordered = sorted(set(run.steps), key=registry.pos) == run.steps
        if run.kind == "up":  # (a catch-up also applies earlier steps to new files)
            upto = {s.id for s in registry.upto(run.to)}
            ok = ordered and set(between) <= set(run.steps) and set(run.steps) <= upto
        else:
            ok = run.kind == "down" and run.steps == [
                s.id for s in reversed(registry.between(run.to, run.from_))
            ]
        if not ok:
            raise LedgerError(
                f"{run.rel}: a {run.kind} run from {run.from_ or 'base'} to"
                f" {run.to or 'base'} lists steps {run.steps}; it was edited by hand",
                hint="restore it from git (git checkout -- data/.migrate)",
            )
