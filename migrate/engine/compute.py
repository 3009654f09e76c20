"""What an ``up`` would do, computed and checked, nothing written (read-only).

1. where each failure file stands and what the gathering steps need from it: one read
   (:mod:`.survey`, parts from the cache where a file's bytes are unchanged);
2. the plan made file by file from what each file's content lacks (:mod:`.plan`);
3. each failure file through its steps in memory (:func:`.lifecycle.forward_lines`), the
   inverse of every change proved, the result validated;
4. each queue's status derived from the records as the failure steps leave them.

``up`` (:mod:`.forward`) writes what this computes; ``status``, ``check`` and ``verify``
ask it too, so they say what ``up`` would do because they run the same code. A run that
will write gives a ``sink`` (its staging archive): each new version goes there as it is
computed, and memory follows one file, not the repo.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from migrate.engine.lifecycle import Outcome, forward_derived, forward_lines
from migrate.engine.plan import Plan, for_files, plan
from migrate.engine.report import RunReport, StepReport
from migrate.engine.survey import Seen, parts_of, survey
from migrate.engine.validate import output_problems
from migrate.errors import BadInputError, StepBug
from migrate.failures_index import refuse
from migrate.parallel import map_files
from migrate.progress import Phase, phase
from migrate.reader import Problem
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import Family, Gathers, RunContext, RunOptions, run_context
from migrate.store import cache, staging
from migrate.store.ledger import Ledger, checksum, record_line


@dataclass(slots=True)
class Change:
    """A file the run changes: what the ledger records of it, and how to replace it
    (compact: one per file the run changes, up to every file of the repo)."""

    rel: str
    steps: list[str]
    record: bytes  # its line in the run's ledger file (steps and patches)
    after: str  # the checksum of its new bytes
    move: staging.Move  # (what replacing it needs: see migrate.store.staging)


@dataclass
class Computed:
    """What an ``up`` would do, computed and checked, nothing written."""

    plan: Plan
    ctx: RunContext
    report: RunReport
    changes: list[Change] = field(default_factory=list)  # the files it changes
    seen: dict[str, Seen] = field(default_factory=dict)
    # failure files the run rewrote (their ``seen`` parts are then those of the new bytes)
    rewritten: set[str] = field(default_factory=set)
    cache_versions: dict[str, int] = field(default_factory=dict)
    registry: Registry = REGISTRY
    prepared: dict[str, Any] = field(default_factory=dict)  # each step's context

    sink: staging.Staging | None = None  # where new versions go as they are computed

    @property
    def writes(self) -> bool:
        """Whether the run writes anything: a file changes, or the repo's version moves."""
        return bool(self.changes) or self.plan.moves

    def take(self, out: Outcome, stamp: int | None, before: str) -> None:
        """A file the run changes: its new bytes to the sink (not kept), its record kept."""
        after = checksum(out.data)
        if self.sink is not None:
            self.sink.add(out.rel, out.data, before)
        self.changes.append(
            Change(
                out.rel,
                out.steps,
                record_line(out.rel, out.steps, out.patches),
                after,
                (out.rel, after, stamp),
            )
        )


def compute(
    store,
    ledger: Ledger,
    target: str | None,
    options: RunOptions,
    diff: bool = False,
    jobs: int = 1,
    progress: Phase | None = None,
    registry: Registry = REGISTRY,
    sink: staging.Staging | None = None,
    known: dict[str, tuple[str, int | None]] | None = None,
) -> Computed:
    """Everything an ``up`` does but writing (see the module); ``known``: see
    :func:`.survey.survey`."""
    ctx = run_context(store, options)
    the_plan = plan(ledger, "up", target, registry)
    wanted = registry.upto(the_plan.target)
    gatherers = [s for s in registry if isinstance(s, Gathers)]
    versions = {s.id: s.part_version for s in gatherers}
    gathering = any(isinstance(s, Gathers) for s in wanted)
    cached = cache.load(store, versions, ctx.names) if gathering else {}
    rels = store.failure_rels()
    seen = survey(
        store, rels, gatherers if gathering else [], ctx.names, cached, jobs, progress, known
    )
    the_plan = for_files(
        the_plan, {r: s.version for r, s in seen.items()}, store.queue_rels(), registry
    )
    done = Computed(the_plan, ctx, RunReport(the_plan, dry_run=True), seen=seen, sink=sink)
    done.cache_versions, done.registry = versions, registry
    if not the_plan.files and not the_plan.moves:
        return done
    _preflight(store, the_plan)
    done.prepared = prepared = {s.id: s.prepare(ctx) for s in the_plan.steps}
    reports = {s.id: StepReport(s, "up") for s in the_plan.steps}
    done.report.steps = list(reports.values())
    for fam in Family:
        steps = [s for s in the_plan.steps if s.family is fam]
        for s in steps:
            if isinstance(s, Gathers):  # (a queue step's: of the failure files as rewritten)
                s.combine(prepared[s.id], _Parts(rels, seen, s.id))
        if fam is Family.FAILURES and steps:
            _failures(store, done, prepared, reports, gatherers, diff, jobs, progress)
        elif fam is Family.QUEUES and steps:
            if any(isinstance(s, Gathers) for s in steps):  # (what the run rewrote, it read)
                refuse(
                    [p for r, s in seen.items() if r not in done.rewritten for p in s.problems],
                    "nothing was written",
                )
            _queues(store, done, prepared, reports, diff)
    for s in the_plan.steps:
        reports[s.id].notes.extend(s.summary(prepared[s.id], reports[s.id].totals))
    return done


def _preflight(store, the_plan: Plan) -> None:
    problems = list(
        dict.fromkeys(
            str(p)
            for s in the_plan.steps
            for p in s.preflight(store, [r for r, ss in the_plan.files.items() if s in ss])
        )
    )
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            problems,
            hint="fix or remove these lines (see `migrate check`), then run again",
        )


def _failures(store, done: Computed, prepared, reports, gatherers, diff, jobs, progress) -> None:
    files = done.plan.files
    rels = [r for r, steps in files.items() if steps[0].family is Family.FAILURES]
    quarantine = done.ctx.options.quarantine
    names = done.ctx.names

    def one(rel: str) -> tuple[Outcome, Any]:
        stamp = staging.stamp(store.fspath(rel))
        data = store.read_bytes(rel)
        out = forward_lines(rel, data, list(files[rel]), prepared, quarantine)
        extra: Any = (stamp, checksum(data), None, "")
        if out.changed and not (out.bug or out.problems):
            version = files[rel][-1].produces
            out.problems, bugs = output_problems("failures", rel, data, out.data, version)
            if bugs:
                out.bug = f"steps {', '.join(out.steps)} wrote what the v{version} model" + (
                    " refuses:\n" + "\n".join(str(p) for p in bugs)
                )
            parts = parts_of(rel, out.data, gatherers, names)[0] if gatherers else None
            extra = (*extra[:2], parts, _diff(rel, data, out.data) if diff else "")
        if not out.changed:
            out.data = b""  # (the bytes are not needed back)
        return out, extra  # (one file's new bytes: they go to the sink as they come)

    step_ids = "+".join(s.id for s in done.plan.steps if s.family is Family.FAILURES)
    shown = phase(progress, f"{step_ids} failure files", len(rels))
    bugs: list[str] = []
    problems: list[Problem] = []
    results = zip(rels, map_files(one, rels, jobs, shown), strict=True)
    for rel, (out, (stamp, before, parts, text)) in results:
        # (strings of the main process, not a copy of each from the worker)
        out.rel, out.steps = rel, [s.id for s in files[rel] if s.id in out.steps]
        bugs += [out.bug] if out.bug else []  # (folded as they come: memory follows
        problems += out.problems  # the report, not the number of files)
        if out.bug or out.problems:
            continue
        _tally(done, reports, out, files[out.rel])
        if out.changed:
            done.take(out, stamp, before)
            done.report.files.append((out.rel, text))
            if parts is not None:  # (those of the bytes before are not needed again)
                done.seen[out.rel].parts = parts
                done.rewritten.add(out.rel)
    _refuse_if_bad(bugs, problems)


def _queues(store, done: Computed, prepared, reports, diff) -> None:
    bugs: list[str] = []
    problems: list[Problem] = []
    for rel, steps in done.plan.files.items():
        if steps[0].family is not Family.QUEUES:
            continue
        stamp = staging.stamp(store.fspath(rel))
        data = store.read_bytes(rel)
        out = forward_derived(rel, data, steps[0], prepared[steps[0].id])
        if out.changed and not (out.bug or out.problems):
            found, wrong = output_problems("queues", rel, data, out.data, 0)
            out.problems += found
            if wrong:
                out.bug = f"step {steps[0].id} wrote a queue its model refuses: {wrong[0]}"
        bugs += [out.bug] if out.bug else []
        problems += out.problems
        if out.bug or out.problems:
            continue
        _tally(done, reports, out, steps)
        if out.changed:
            done.report.files.append((rel, _diff(rel, data, out.data) if diff else ""))
            done.take(out, stamp, checksum(data))
    _refuse_if_bad(bugs, problems)


def _tally(done: Computed, reports, out: Outcome, steps) -> None:
    for s in steps:
        sr = reports[s.id]
        sr.files_read += 1
        sr.totals.update(out.counts.get(s.id, {}))
        sr.notes.extend(out.notes.get(s.id, ()))
        sr.kept.update(out.kept.get(s.id, {}))
        sr.changed_files += s.id in out.steps


class _Parts:
    """The ``(file, part)`` pairs a step's ``combine`` is given, decoded as it iterates
    (it may iterate more than once): the parts of thousands of files are never all
    decoded at once."""

    def __init__(self, rels: list[str], seen: dict[str, Seen], sid: str):
        self.rels, self.seen, self.sid = rels, seen, sid

    def __iter__(self):
        for rel in self.rels:
            blob = self.seen[rel].parts
            if blob is not None:
                yield rel, cache.parts_of(blob, self.sid)


def _refuse_if_bad(bugs: list[str], problems: list[Problem]) -> None:
    if bugs:
        raise StepBug(
            f"a step failed on {len(bugs)} file(s), first: {bugs[0].splitlines()[0]};"
            " nothing was written",
            bugs,
        )
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            [str(p) for p in problems],
            hint="fix or remove these lines (see `migrate check`), then run again",
        )


def _diff(rel: str, old: bytes, new: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"a/{rel}",
            tofile=f"b/{rel}",
        )
    )
