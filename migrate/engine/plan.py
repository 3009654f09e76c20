"""The plan: which steps a run applies or reverts, as a value.

``plan(ledger, "up", "head")`` can be printed and tested without touching files, and the
same plan drives real runs and dry runs. Targets: ``head``, ``base``, a step id, a unique
id prefix or a step name, ``+N``/``-N``.

An ``up`` then goes file by file (:func:`file_steps`): a file another writer added or
rewrote gets every step its content lacks, even below the repo's version (catch-up), and
a derived step (queue status) is derived again whenever the failures it reads moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import __version__
from migrate.engine.scan import Scan, Seen, content_version
from migrate.errors import LedgerError, UsageError
from migrate.ledger import Ledger, inputs
from migrate.repo import DataRepo
from migrate.steps import STEPS, Step


@dataclass(frozen=True)
class Plan:
    direction: str  # "up" or "down"
    steps: tuple[Step, ...]
    current: str | None
    target: str | None
    #: up: each file's steps (:func:`file_steps`; files with none are absent)
    files: dict[str, tuple[Step, ...]] = field(default_factory=dict, compare=False)
    #: up: the files other writers added or rewrote since the tool wrote them
    others: tuple[Seen, ...] = ()
    #: up: for a file taken from its content, the last step its content already had
    ats: dict[str, str | None] = field(default_factory=dict, compare=False)

    def describe(self) -> list[str]:
        if not self.steps:
            return [f"nothing to do: at {self.current or 'base'}"]
        verb = "apply" if self.direction == "up" else "revert"
        if self.direction == "up" and self.current == self.target:
            new = sum(s.kind == "new" for s in self.others)
            out = [
                f"catch up at {self.current}: {new} new file(s) and"
                f" {len(self.others) - new} rewritten by other writers since the last run"
            ]
            for s in self.steps:
                n = sum(s in steps for steps in self.files.values())
                out.append(f"{verb} {s.id} {s.name} to {n} file(s): {s.description}")
            return out
        return [f"{verb} {s.id} {s.name}: {s.description}" for s in self.steps]


def resolve_target(target: str | None, direction: str, current: str | None) -> str | None:
    """``head``, ``base``, a step id or unique prefix/name, ``+N``/``-N``; None means base."""
    ids = [s.id for s in STEPS]
    pos = ids.index(current) if current else -1
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


def file_steps(repo: DataRepo, the_plan: Plan, found: Scan) -> Plan:
    """``the_plan`` (an ``up``) made file by file, from where each file stands:

    * a file whose bytes are the tool's gets the planned steps of its family it has not had;
    * a file another writer added or rewrote starts again from its bytes: every step of its
      family up to the target, but those whose version its content already has (a v2
      failure file needs neither 0001 nor 0002); a derived step always runs;
    * a derived step (``Step.derived``) runs again on every file of its family whenever a
      failure file came, changed or went, or the run applies a failure step anyway, or the
      failure files are no longer those it derived from (``inputs``: after a merge of two
      branches, each file may be as one branch's run left it).
    """
    ids = [s.id for s in STEPS]
    upto = STEPS[: ids.index(the_plan.target) + 1] if the_plan.target else []
    files: dict[str, tuple[Step, ...]] = {}
    ats: dict[str, str | None] = {}
    for rel, seen in found.files.items():
        fam = [s for s in upto if s.family == seen.family]
        if seen.kind == "same":
            done = {*seen.ids, *_below(fam, seen.at)}
            steps = [s for s in fam if s.id not in done]
        else:
            at = (
                _content_at(repo, rel, fam, the_plan.current) if seen.family == "failures" else None
            )
            ats[rel] = at
            steps = [s for s in fam if s.derived or s.id not in _below(fam, at)]
        if steps:
            files[rel] = tuple(steps)
    failures_moved = found.gone or any(
        seen.family == "failures" and rel in files for rel, seen in found.files.items()
    )
    derived_from = None if failures_moved else _failure_inputs(found)
    for rel, seen in found.files.items():
        derived = [s for s in upto if s.family == seen.family and s.derived]
        if not derived or seen.kind != "same" or rel in files:
            continue
        last = dict(seen.inputs)
        if failures_moved or any(last.get(s.id, derived_from) != derived_from for s in derived):
            files[rel] = tuple(derived)  # (its inputs moved: a batch, a merge of branches)
    planned = set(the_plan.steps)  # (the repo's version moves even where a step has no file)
    steps = tuple(s for s in STEPS if s in planned or any(s in f for f in files.values()))
    others = tuple(s for s in found.others if s.rel in files or s.kind != "same")
    return Plan(the_plan.direction, steps, the_plan.current, the_plan.target, files, others, ats)


def _failure_inputs(found: Scan) -> str:
    """The failure files as they are (a derived step that derived from others is stale)."""
    return inputs({rel: s.digest for rel, s in found.files.items() if s.family == "failures"})


def _below(fam: list[Step], at: str | None) -> set[str]:
    """The ids of the steps of ``fam`` up to ``at``."""
    if at is None:
        return set()
    ids = [s.id for s in fam]
    return set(ids[: ids.index(at) + 1]) if at in ids else set()


def _content_at(repo: DataRepo, rel: str, fam: list[Step], current: str | None) -> str | None:
    """The last step of ``fam``, up to the repo's version ``current``, whose version a
    failure file's content already has (steps beyond the repo's version are not assumed:
    v2 lines in a repo at 0001 still get step 0002)."""
    if current is None or not any(s.id <= current for s in fam):
        return None  # (nothing to skip: no read)
    try:
        version = content_version(repo.read_bytes(rel))
    except Exception:  # (unreadable: the step that reads it names the problem)
        return None
    at = None
    for s in fam:
        if s.derived or s.produces > version or s.id > current:
            break
        at = s.id
    return at


def known_ledger(repo: DataRepo) -> Ledger:
    """The repo's ledger, for a command that reads the data through it: refused (exit 4)
    where a run names a step this migrate does not know (a newer one wrote it) or was
    edited (``history`` alone lists such runs)."""
    ledger = Ledger.load(repo)
    check_known(ledger)
    return ledger


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
        if run.kind == "up":  # (a catch-up also applies earlier steps to new files)
            ok = set(ids[start:end]) <= set(run.steps) and run.steps == [
                i for i in ids[:end] if i in run.steps
            ]
        else:
            ok = run.kind == "down" and run.steps == ids[end:start][::-1]
        if not ok:
            raise LedgerError(
                f"{run.rel}: a {run.kind} run from {run.from_ or 'base'} to"
                f" {run.to or 'base'} lists steps {run.steps}; it was edited by hand",
                hint="restore it from git (git checkout -- data/.migrate)",
            )
