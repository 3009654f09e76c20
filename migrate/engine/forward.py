"""``up``: apply the planned steps, each file read once and written once.

1. ``prepare`` every planned step; one read-only pass over the failure files gives the
   failure steps what they need from other files (``gather``/``combine``);
2. each failure file goes through every planned failure step in memory, and the result is
   validated, proven reversible and staged; what the queue steps need is gathered from the
   new bytes on the way;
3. the same for the queues;
4. one ledger run for all of it, then one rename per file (:mod:`migrate.engine.commit`).

Nothing is written before every file has been computed and checked: bad input refuses
the whole run.
"""

from __future__ import annotations

import difflib
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from migrate import __version__, clock
from migrate.engine import commit
from migrate.engine.plan import Plan, check_known, plan
from migrate.engine.report import RunReport, StepReport
from migrate.engine.validate import output_problems
from migrate.errors import BadInputError, MigrateError, StepBug, UsageError
from migrate.failures_index import file_rows, refuse
from migrate.ledger import FileState, Ledger, Run, StepState, checksum, entry_line, new_run_id
from migrate.lock import hold
from migrate.parallel import map_files
from migrate.reader import Problem
from migrate.repo import FAILURES_DIR, DataRepo
from migrate.steps import Step
from migrate.steps.base import RunContext, RunOptions, run_context


@dataclass
class FileOutcome:
    """What one file's pass through the planned steps of a family gave (small: it crosses
    from a worker process to the main one)."""

    rel: str
    line: bytes = b""  # its ledger entry
    after: str = ""  # the checksum of its new bytes
    changed: bool = False
    step_changed: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bug: str | None = None  # a step raised: its traceback
    diff: str = ""
    parts: dict[str, Any] = field(default_factory=dict)  # gathered for later steps


def up(
    repo: DataRepo,
    target: str | None = "head",
    *,
    dry_run: bool = False,
    diff: bool = False,
    options: RunOptions | None = None,
    progress=None,
    after_each=None,
    jobs: int = 1,
) -> RunReport:
    """Apply steps up to ``target``. ``after_each(i)`` is a test hook run after each rename;
    ``jobs`` > 1 spreads the files over that many processes."""
    options = options or RunOptions()
    if options.recipes and not repo.path(options.recipes).is_dir():
        raise UsageError(f"{options.recipes}: not a directory (--recipes takes a folder)")
    start = clock.monotonic()
    with hold(repo, "up", dry_run=dry_run):
        ledger = Ledger.load(repo)
        check_known(ledger)
        settled = None
        if ledger.pending is not None and not dry_run:
            settled = commit.settle(repo, ledger)
        if not dry_run:
            commit.clean(repo, _folders(repo))
        the_plan = plan(ledger, "up", target)
        report = RunReport(the_plan, dry_run, settled=settled)
        if the_plan.steps:
            try:
                _run(repo, ledger, the_plan, report, options, diff, progress, after_each, jobs)
            except MigrateError:
                if ledger.pending is None and not dry_run:  # nothing replaced: give the
                    commit.clean(repo, _folders(repo))  # staged copies' space back
                raise
        report.seconds = clock.monotonic() - start
        return report


def _folders(repo: DataRepo) -> set[str]:
    return {FAILURES_DIR, "data/queues", "data"}


def _run(
    repo: DataRepo,
    ledger: Ledger,
    the_plan: Plan,
    report: RunReport,
    options: RunOptions,
    diff: bool,
    progress,
    after_each,
    jobs: int,
) -> None:
    problems = list(dict.fromkeys(str(p) for s in the_plan.steps for p in s.preflight(repo)))
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            problems,
            hint="fix or remove these lines (see `migrate check`), then run again",
        )
    ctx = run_context(repo, options)
    prepared = {s.id: s.prepare(ctx) for s in the_plan.steps}
    states = ledger.states()
    reports = {s.id: StepReport(s, "up") for s in the_plan.steps}
    report.steps = list(reports.values())
    outcomes: list[FileOutcome] = []
    stage = not report.dry_run
    by_family = [
        (fam, [s for s in the_plan.steps if s.family == fam]) for fam in ("failures", "queues")
    ]
    gathered: set[str] = set()
    for i, (family, steps) in enumerate(by_family):
        if not steps:
            continue
        # steps of later phases gather from this phase's output; the others read the
        # failure files as they are, once, before their phase
        later = [s for _, ss in by_family[i + 1 :] for s in ss if s.gathers]
        _gather(repo, ctx, [s for s in steps if s.gathers and s.id not in gathered], prepared, jobs)
        files = steps[0].files(repo)

        def one(rel: str, steps=steps, later=later) -> FileOutcome:
            return _file_up(repo, ctx, rel, steps, prepared, states.get(rel), stage, diff, later)

        done = list(map_files(one, files, jobs, progress))
        _refuse_if_bad(done)
        _tally(done, reports, report)
        if family == "failures":
            for s in later:
                s.combine(prepared[s.id], [(o.rel, o.parts.get(s.id)) for o in done])
                gathered.add(s.id)
        outcomes.extend(done)
    for s in the_plan.steps:
        reports[s.id].notes.extend(s.summary(prepared[s.id], reports[s.id].totals))
    if report.dry_run:
        return
    run = Run(
        new_run_id(ledger),
        "up",
        clock.now_iso(),
        __version__,
        the_plan.current,
        the_plan.target,
        [s.id for s in the_plan.steps],
        _options_record(repo, options),
        _counts(report),
    )
    commit.sync_all()  # every staged file durable before the ledger names it
    ledger.write_pending(run, [o.line for o in outcomes])
    commit.commit(repo, [(o.rel, o.after) for o in outcomes if o.changed], after_each)
    ledger.finish(run)
    report.run_id = run.id


def _gather(repo, ctx, steps: list[Step], prepared, jobs: int) -> None:
    """One read-only pass: each failure file's rows, handed to every step that gathers.
    A failure step names the lines it cannot read itself, when it rewrites the file; a
    queue step would derive status from records it cannot read: refused here."""
    if not steps:
        return
    files = [ff.rel for ff in repo.failure_files()]

    def one(rel: str) -> tuple[dict[str, Any], list[Problem]]:
        rows, problems = file_rows(rel, repo.read_bytes(rel), ctx.names.get, want=None)
        return {s.id: s.gather(prepared[s.id], rel, rows) for s in steps}, problems

    done = list(map_files(one, files, jobs))
    if any(s.family == "queues" for s in steps):
        refuse([p for _, problems in done for p in problems], "nothing was written")
    for s in steps:
        s.combine(prepared[s.id], [(rel, d[0][s.id]) for rel, d in zip(files, done, strict=True)])


def _file_up(
    repo: DataRepo,
    ctx: RunContext,
    rel: str,
    steps: list[Step],
    prepared: dict[str, Any],
    state: FileState | None,
    stage: bool,
    diff: bool,
    later: list[Step],
) -> FileOutcome:
    """One file through the planned steps of its family, in memory."""
    out = FileOutcome(rel)
    data = repo.read_bytes(rel)
    digest = checksum(data)
    fs = FileState(rel, digest) if state is None else _copy(state)
    given = digest if state is not None and digest != state.after else None  # edited since
    cur = data
    for step in steps:
        try:
            res = step.up(rel, cur, prepared[step.id])
            exact = res.exact or step.down(rel, res.data, res.patch) == cur
        except Exception:
            out.bug = f"step {step.id} on {rel}:\n{traceback.format_exc()}"
            return out
        out.counts[step.id] = res.counts
        out.notes[step.id] = res.notes
        if res.problems:
            out.problems.extend(res.problems)
            return out
        new = res.data
        out.step_changed[step.id] = new != cur
        fs.steps.append(
            StepState(
                step.id,
                checksum(new) if new != cur else None,
                res.patch,
                None if exact else cur,  # down cannot rebuild these bytes: the ledger keeps them
                given,
            )
        )
        given = None
        cur = new
    if cur != data:
        out.problems, bugs = output_problems(steps[0].family, rel, data, cur, steps[-1].produces)
        if bugs:
            out.bug = f"steps {', '.join(fs.step_ids)} wrote what the v{steps[-1].produces}" + (
                " model refuses:\n" + "\n".join(str(p) for p in bugs)
            )
        if out.problems or bugs:
            return out
        if stage:
            commit.stage(repo, rel, cur)
        if diff:
            out.diff = _diff(rel, data, cur)
    out.changed = cur != data
    out.after = checksum(cur) if out.changed else fs.after
    out.line = entry_line(fs)
    if later:
        rows, _ = file_rows(rel, cur, ctx.names.get, want=None)
        out.parts = {s.id: s.gather(prepared[s.id], rel, rows) for s in later}
    return out


def _copy(state: FileState) -> FileState:
    return FileState(state.path, state.origin, list(state.steps))


def _tally(done: list[FileOutcome], reports: dict[str, StepReport], report: RunReport) -> None:
    for o in done:
        for step_id, counts in o.counts.items():
            sr = reports[step_id]
            sr.files_read += 1
            sr.totals.update(counts)
            sr.changed_files += o.step_changed.get(step_id, False)
            sr.notes.extend(o.notes.get(step_id, ()))
        if report.dry_run and o.changed:
            report.files.append((o.rel, o.diff))


def _refuse_if_bad(done: list[FileOutcome]) -> None:
    bugs = [o.bug for o in done if o.bug]
    if bugs:
        raise StepBug(
            f"a step failed on {len(bugs)} file(s), first: {bugs[0].splitlines()[0]};"
            " nothing was written",
            bugs,
        )
    problems = [p for o in done for p in o.problems]
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            [str(p) for p in problems],
            hint="fix or remove these lines (see `migrate check`), then run again",
        )


def _options_record(repo: DataRepo, options: RunOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if options.evidence:
        out["evidence"] = list(options.evidence)
    if options.recipes:
        out["recipes"] = options.recipes
    if options.quarantine:
        out["quarantine"] = True
    return out


def _counts(report: RunReport) -> dict[str, Any]:
    return {
        sr.step.id: {"files_read": sr.files_read, "files_changed": sr.changed_files}
        | dict(sorted(sr.totals.items()))
        for sr in report.steps
    }


def _diff(rel: str, old: bytes, new: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"a/{rel}",
            tofile=f"b/{rel}",
        )
    )
