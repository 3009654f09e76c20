"""``up``: apply the planned steps, each file read once and written once.

1. ``prepare`` every planned step; one read-only pass over the failure files gives the
   failure steps what they need from other files (``gather``/``combine``);
2. each failure file goes through every planned failure step in memory, and the result is
   validated and proven reversible; what the queue steps need is gathered from the new
   bytes on the way;
3. the same for the queues;
4. the new bytes staged in one archive, one ledger run for all of it, then one write and
   rename per file (:mod:`migrate.engine.commit`).

Nothing is written before every file has been computed and checked: bad input refuses
the whole run.
"""

from __future__ import annotations

import difflib
import functools
import traceback
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
from migrate.repo import FAILURES_DIR, DataRepo, file_mode
from migrate.steps import Step
from migrate.steps.base import RunContext, RunOptions, run_context


@dataclass(slots=True)
class FileOutcome:
    """What one file's pass through the planned steps of a family gave (small: it crosses
    from a worker process to the main one)."""

    rel: str
    line: bytes = b""  # its ledger entry
    after: str = ""  # the checksum of its new bytes
    changed: bool = False
    step_changed: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bug: str | None = None  # a step raised: its traceback
    diff: str = ""
    parts: dict[str, Any] = field(default_factory=dict)  # gathered for later steps
    data: bytes = b""  # the new bytes, when changed
    mode: int | None = None  # the file's permission bits, which its new version keeps


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
            settled = commit.settle(repo, ledger, jobs)
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
    run = _UpRun(repo, ledger, the_plan, report, run_context(repo, options), diff, jobs)
    try:
        run.compute(progress)
        if run.staging is None:
            return
        run.staging.close()
    except BaseException:
        if run.staging is not None:
            run.staging.abandon()
        raise
    record = Run(
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
    ledger.write_pending(record, run.lines)
    commit.commit(repo, run.moves, jobs, after_each)
    ledger.finish(record)
    repo.path(commit.ARCHIVE).unlink(missing_ok=True)
    report.run_id = record.id


class _UpRun:
    """One ``up`` being computed: every file through its planned steps, checked, its new
    bytes staged; what the ledger will say about each file collected on the way."""

    def __init__(self, repo, ledger, the_plan, report, ctx: RunContext, diff: bool, jobs: int):
        self.repo, self.ctx, self.diff, self.jobs = repo, ctx, diff, jobs
        self.report = report
        self.steps = the_plan.steps
        self.prepared = {s.id: s.prepare(ctx) for s in self.steps}
        self.states = ledger.states()
        self.reports = {s.id: StepReport(s, "up") for s in self.steps}
        report.steps = list(self.reports.values())
        self.lines: list[bytes] = []  # each file's ledger entry
        self.moves: list[commit.Move] = []  # the files to replace
        self.staging = None if report.dry_run else commit.Staging(repo)

    def compute(self, progress) -> None:
        """The failure files through the failure steps, then the queues through the queue
        steps. Steps of a later family gather from the new failure files; the others read
        the failure files as they are, once, before their family."""
        by_family = [(f, [s for s in self.steps if s.family == f]) for f in ("failures", "queues")]
        gathered: set[str] = set()
        for i, (family, steps) in enumerate(by_family):
            if not steps:
                continue
            later = [s for _, ss in by_family[i + 1 :] for s in ss if s.gathers]
            self.gather([s for s in steps if s.gathers and s.id not in gathered])
            parts: dict[str, list[tuple[str, Any]]] = {s.id: [] for s in later}
            bugs: list[str] = []
            problems: list[Problem] = []
            one = functools.partial(self.file_up, steps=steps, later=later)
            for o in map_files(one, steps[0].files(self.repo), self.jobs, progress):
                bugs += [o.bug] if o.bug else []  # (folded as they come: memory follows
                problems += o.problems  # the report, not the number of files)
                if not (o.bug or o.problems):
                    self.take(o, later, parts)
            _refuse_if_bad(bugs, problems)
            if family == "failures":
                for s in later:
                    s.combine(self.prepared[s.id], parts.pop(s.id))
                    gathered.add(s.id)
        for s in self.steps:
            self.reports[s.id].notes.extend(
                s.summary(self.prepared[s.id], self.reports[s.id].totals)
            )

    def take(self, o: FileOutcome, later: list[Step], parts) -> None:
        for step_id, counts in o.counts.items():
            sr = self.reports[step_id]
            sr.files_read += 1
            sr.totals.update(counts)
            sr.changed_files += o.step_changed.get(step_id, False)
            sr.notes.extend(o.notes.get(step_id, ()))
        for s in later:
            parts[s.id].append((o.rel, o.parts.get(s.id)))
        self.lines.append(o.line)
        if o.changed:
            self.moves.append((o.rel, o.after, o.mode))
            if self.staging is not None:
                self.staging.add(o.rel, o.data)
            if self.report.dry_run:
                self.report.files.append((o.rel, o.diff))

    def gather(self, steps: list[Step]) -> None:
        """One read-only pass: each failure file's rows, handed to every step that gathers.
        A failure step names the lines it cannot read itself, when it rewrites the file; a
        queue step would derive status from records it cannot read: refused here."""
        if not steps:
            return
        files = [ff.rel for ff in self.repo.failure_files()]

        def one(rel: str) -> tuple[dict[str, Any], list[Problem]]:
            rows, problems = self.rows(rel, self.repo.read_bytes(rel))
            return {s.id: s.gather(self.prepared[s.id], rel, rows) for s in steps}, problems

        done = list(map_files(one, files, self.jobs))
        if any(s.family == "queues" for s in steps):
            refuse([p for _, problems in done for p in problems], "nothing was written")
        for s in steps:
            pairs = [(rel, d[0][s.id]) for rel, d in zip(files, done, strict=True)]
            s.combine(self.prepared[s.id], pairs)

    def rows(self, rel: str, data: bytes):
        return file_rows(rel, data, self.ctx.names.get, want=None)

    def file_up(self, rel: str, steps: list[Step], later: list[Step]) -> FileOutcome:
        """One file through the planned steps of its family, in memory (in a worker)."""
        out = FileOutcome(rel)
        data = self.repo.read_bytes(rel)
        digest = checksum(data)
        state = self.states.get(rel)
        fs = FileState(rel, digest) if state is None else _copy(state)
        given = digest if state is not None and digest != state.after else None  # edited since
        cur = data
        for step in steps:
            try:
                res = step.up(rel, cur, self.prepared[step.id])
                exact = res.exact or step.down(rel, res.data, res.patch) == cur
            except Exception:
                out.bug = f"step {step.id} on {rel}:\n{traceback.format_exc()}"
                return out
            out.counts[step.id] = dict(res.counts)  # (plain: cheaper to send)
            if res.notes:
                out.notes[step.id] = res.notes
            if res.problems:
                out.problems.extend(res.problems)
                return out
            new = res.data
            out.step_changed[step.id] = new != cur
            restore = None if exact else cur  # down cannot rebuild these: the ledger keeps them
            after = checksum(new) if new != cur else None
            fs.steps.append(StepState(step.id, after, res.patch, restore, given))
            given = None
            cur = new
        if cur != data:
            version = steps[-1].produces
            out.problems, bugs = output_problems(steps[0].family, rel, data, cur, version)
            if bugs:
                out.bug = f"steps {', '.join(fs.step_ids)} wrote what the v{version} model" + (
                    " refuses:\n" + "\n".join(str(p) for p in bugs)
                )
            if out.problems or bugs:
                return out
            out.changed, out.data, out.after = True, cur, checksum(cur)
            out.mode = file_mode(self.repo.fspath(rel))
            if self.diff:
                out.diff = _diff(rel, data, cur)
        out.line = entry_line(fs)
        if later:  # (a queue step would derive status from records it cannot read)
            rows, out.problems = self.rows(rel, cur)
            out.parts = {s.id: s.gather(self.prepared[s.id], rel, rows) for s in later}
        return out


def _copy(state: FileState) -> FileState:
    return FileState(state.path, state.origin, list(state.steps))


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
