"""``up``: apply the planned steps, each file read once and written once.

1. where each failure file stands and what the gathering steps need from it: one read
   (:mod:`.survey`, parts from the cache where a file's bytes are unchanged);
2. the plan made file by file from what each file's content lacks (:mod:`.plan`);
3. each failure file through its steps in memory (:func:`.lifecycle.forward_lines`), the
   inverse of every change proved, the result validated;
4. each queue's status derived from the records as the failure steps leave them;
5. nothing changed and the repo's version does not move: nothing is written, not even a
   ledger run; else the new bytes staged in one archive, one ledger run, one write and
   rename per file (:mod:`migrate.store.staging`).

Nothing is written before every file has been computed and checked: bad input refuses
the whole run. :func:`compute` is the read-only part, which ``status``, ``check`` and
``verify`` ask too: they say what ``up`` would do because they run the same code.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate import __version__, clock
from migrate.engine.lifecycle import Outcome, forward_derived, forward_lines
from migrate.engine.plan import Plan, for_files, known_ledger, plan
from migrate.engine.report import RunReport, StepReport
from migrate.engine.survey import Seen, parts_of, survey
from migrate.engine.validate import output_problems
from migrate.errors import BadInputError, MigrateError, StepBug, UsageError
from migrate.failures_index import refuse
from migrate.layout import IGNORE_FILE, RUNS_DIR
from migrate.parallel import map_files
from migrate.progress import Phase, phase
from migrate.reader import Problem
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import Family, Gathers, RunContext, RunOptions, run_context
from migrate.store import cache, file_mode, staging
from migrate.store.ledger import Ledger, Run, checksum, record_line
from migrate.store.lock import hold


@dataclass
class Computed:
    """What an ``up`` would do, computed and checked, nothing written."""

    plan: Plan
    ctx: RunContext
    report: RunReport
    outcomes: list[Outcome] = field(default_factory=list)  # the files it changes
    stamps: dict[str, tuple[int | None, int | None, str]] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    parts_after: dict[str, bytes] = field(default_factory=dict)  # rewritten failure files
    cache_versions: dict[str, int] = field(default_factory=dict)
    registry: Registry = REGISTRY
    prepared: dict[str, Any] = field(default_factory=dict)  # each step's context

    @property
    def writes(self) -> bool:
        """Whether the run writes anything: a file changes, or the repo's version moves."""
        return bool(self.outcomes) or self.plan.moves


def up(
    store,
    target: str | None = "head",
    *,
    dry_run: bool = False,
    diff: bool = False,
    options: RunOptions | None = None,
    progress: Phase | None = None,
    after_each=None,
    jobs: int = 1,
    registry: Registry = REGISTRY,
) -> RunReport:
    """Apply steps up to ``target``. ``after_each(i)`` is a test hook run after each rename;
    ``jobs`` > 1 spreads the files over that many processes."""
    from migrate.engine.recipes import resolve_recipes

    options = options or RunOptions()
    for path in options.evidence:
        if not os.access(path, os.R_OK):  # (a typo would migrate without the evidence)
            raise UsageError(f"{path}: no such file or folder, or unreadable (--evidence)")
    start = clock.monotonic()
    with hold(store, "up", dry_run=dry_run):
        ledger = known_ledger(store, registry)
        settled = staging.begin(store, ledger, dry_run)
        options = resolve_recipes(store, ledger, options)
        try:
            done = compute(store, ledger, target, options, diff, jobs, progress, registry)
            done.report.settled, done.report.dry_run = settled, dry_run
            if not done.writes:  # (nothing changes: nothing to do, nothing written)
                done.report.plan = Plan("up", (), ledger.current, ledger.current)
                done.report.steps = []
            if not dry_run:
                done.report.files = []
                if done.writes:
                    _write(store, ledger, done, after_each, progress)
                _save_cache(store, done, written=done.writes)
        except MigrateError:
            if ledger.pending is None and not dry_run:  # nothing replaced: give the
                staging.clean(store)  # staged copies' space back
            raise
        done.report.seconds = clock.monotonic() - start
        return done.report


def compute(
    store,
    ledger: Ledger,
    target: str | None,
    options: RunOptions,
    diff: bool = False,
    jobs: int = 1,
    progress: Phase | None = None,
    registry: Registry = REGISTRY,
) -> Computed:
    """Everything an ``up`` does but writing (see the module)."""
    ctx = run_context(store, options)
    the_plan = plan(ledger, "up", target, registry)
    wanted = registry.upto(the_plan.target)
    gatherers = [s for s in registry if isinstance(s, Gathers)]
    versions = {s.id: s.part_version for s in gatherers}
    gathering = any(isinstance(s, Gathers) for s in wanted)
    cached = cache.load(store, versions, ctx.names) if gathering else {}
    rels = store.failure_rels()
    seen = survey(store, rels, gatherers if gathering else [], ctx.names, cached, jobs, progress)
    the_plan = for_files(
        the_plan, {r: s.version for r, s in seen.items()}, store.queue_rels(), registry
    )
    done = Computed(the_plan, ctx, RunReport(the_plan, dry_run=True), seen=seen)
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
            if isinstance(s, Gathers):
                src = {} if fam is Family.FAILURES else done.parts_after
                s.combine(prepared[s.id], _Parts(rels, src, seen, s.id))
        if fam is Family.FAILURES and steps:
            _failures(store, done, prepared, reports, gatherers, diff, jobs, progress)
        elif fam is Family.QUEUES and steps:
            if any(isinstance(s, Gathers) for s in steps):  # (what the run rewrote, it read)
                refuse(
                    [p for r, s in seen.items() if r not in done.parts_after for p in s.problems],
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
        out.lines = None  # (not sent back: the parts are made here)
        extra: Any = (stamp, file_mode(store.fspath(rel)), checksum(data), None, "")
        if out.changed and not (out.bug or out.problems):
            version = files[rel][-1].produces
            out.problems, bugs = output_problems("failures", rel, data, out.data, version)
            if bugs:
                out.bug = f"steps {', '.join(out.steps)} wrote what the v{version} model" + (
                    " refuses:\n" + "\n".join(str(p) for p in bugs)
                )
            parts = parts_of(rel, out.data, gatherers, names)[0] if gatherers else None
            extra = (*extra[:3], parts, _diff(rel, data, out.data) if diff else "")
        if not out.changed:
            out.data = b""  # (the bytes are not needed back)
        return out, extra

    step_ids = "+".join(s.id for s in done.plan.steps if s.family is Family.FAILURES)
    shown = phase(progress, f"{step_ids} failure files", len(rels))
    bugs: list[str] = []
    problems: list[Problem] = []
    for out, (stamp, mode, before, parts, text) in map_files(one, rels, jobs, shown):
        bugs += [out.bug] if out.bug else []  # (folded as they come: memory follows
        problems += out.problems  # the report, not the number of files)
        if out.bug or out.problems:
            continue
        _tally(done, reports, out, files[out.rel])
        if out.changed:
            done.outcomes.append(out)
            done.stamps[out.rel] = (stamp, mode, before)
            done.report.files.append((out.rel, text))
            if parts is not None:
                done.parts_after[out.rel] = parts
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
            done.outcomes.append(out)
            done.stamps[rel] = (stamp, file_mode(store.fspath(rel)), checksum(data))
            done.report.files.append((rel, _diff(rel, data, out.data) if diff else ""))
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
    decoded at once. ``first``: the parts of the files the run rewrote, as it left them."""

    def __init__(self, rels: list[str], first: dict[str, bytes], seen: dict[str, Seen], sid):
        self.rels, self.first, self.seen, self.sid = rels, first, seen, sid

    def __iter__(self):
        for rel in self.rels:
            blob = self.first.get(rel) or self.seen[rel].parts
            if blob is not None:
                yield rel, cache.parts_of(blob, self.sid)


def _write(store, ledger: Ledger, done: Computed, after_each, progress) -> None:
    """Stage every new version, write the run as pending, replace the files, finish."""
    the_plan = done.plan
    box = staging.Staging(store)
    try:
        moves = []
        for out in done.outcomes:
            stamp, mode, before = done.stamps[out.rel]
            box.add(out.rel, out.data, before)
            moves.append((out.rel, checksum(out.data), mode, stamp))
        box.close()
    except BaseException:
        box.abandon()
        raise
    applied = {sid for out in done.outcomes for sid in out.steps}
    moved = {s.id for s in done.registry.between(the_plan.current, the_plan.target)}
    steps = [s.id for s in the_plan.steps if s.id in applied or s.id in moved]
    run = Run(
        ledger.new_run_id(),
        "up",
        clock.now_iso(),
        __version__,
        the_plan.current,
        the_plan.target,
        steps,
        _options_record(store, done.ctx.options),
        _counts(done.report),
    )
    lines = [record_line(o.rel, o.steps, o.patches) for o in done.outcomes]
    ledger.write_pending(run, lines)
    from migrate.engine.recipes import remember

    remember(store, done.ctx.options.recipes, run.options.get("recipes"))
    done.report.theirs = staging.commit(store, moves, after_each, progress=progress)
    ledger.finish(run)
    store.path(staging.ARCHIVE).unlink(missing_ok=True)
    _drop_old_indexes(store)
    done.report.run_id = run.id


def _drop_old_indexes(store) -> None:
    """migrate 0.3 committed its gather index beside each run: a cache, now kept out of
    the commit (:mod:`migrate.store.cache`). A run that writes takes them out."""
    folder = store.path(RUNS_DIR)
    for p in folder.glob("*.index.jsonl") if folder.is_dir() else ():
        p.unlink(missing_ok=True)


def _save_cache(store, done: Computed, written: bool) -> None:
    """The parts of every failure file as the run leaves it, when any was computed."""
    seen = done.seen
    if not seen or not any(s.parts is not None for s in seen.values()):
        return
    fresh = done.parts_after or any(not s.cached and s.parts is not None for s in seen.values())
    if not fresh:
        return
    own = store.cache_dir().is_relative_to(store.path("data"))
    if own and not written and not store.path(IGNORE_FILE).is_file():
        return  # (a run that writes nothing creates nothing in data/: not migrate's folder)
    after = {o.rel: checksum(o.data) for o in done.outcomes}
    lines = []
    for rel, s in seen.items():
        parts = done.parts_after.get(rel) or s.parts
        if parts is None or not s.digest:
            continue
        digest = after.get(rel, s.digest)
        lines.append(parts if parts.startswith(b'{"path"') else cache.entry(rel, digest, parts))
    cache.save(store, done.cache_versions, lines)


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


def _options_record(store, options: RunOptions) -> dict[str, Any]:
    """The run's options as the committed ledger keeps them: no local absolute path."""
    out: dict[str, Any] = {}
    if options.evidence:
        out["evidence"] = [source(store, path) for path in options.evidence]
    if options.recipes:
        out["recipes"] = source(store, options.recipes)
    elif options.no_recipes:  # (said: later runs keep it; none found: they look again)
        out["recipes"] = False
    if options.quarantine:
        out["quarantine"] = True
    return out


def source(store, path: str) -> str | dict[str, str]:
    """A folder (or file) the run read: inside the repo, its path relative to the repo;
    outside, its name and a sha256 of what was read from it (each file's path below it
    and bytes), which says whether two runs read the same evidence, on any machine."""
    where = Path(path).resolve()
    if where.is_relative_to(store.root):
        return where.relative_to(store.root).as_posix() or "."
    h = hashlib.sha256()
    files = [where] if where.is_file() else sorted(p for p in where.rglob("*") if p.is_file())
    for f in files:
        h.update(f.relative_to(where).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"name": where.name, "sha256": h.hexdigest()}


def _counts(report: RunReport) -> dict[str, Any]:
    out = {}
    for sr in report.steps:
        c = {"files_read": sr.files_read, "files_changed": sr.changed_files}
        if sr.kept:
            c["kept_by_reason"] = dict(sorted(sr.kept.items()))
        out[sr.step.id] = c | dict(sorted(sr.totals.items()))
    return out


def _diff(rel: str, old: bytes, new: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"a/{rel}",
            tofile=f"b/{rel}",
        )
    )
