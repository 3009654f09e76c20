"""``up``: apply the planned steps, each file read once and written once.

0. where each file stands (:mod:`.scan`): the plan made file by file, so that files other
   writers added or rewrote since the last run are caught up (:func:`.plan.file_steps`);
1. ``prepare`` every planned step; what the failure steps need from other files
   (``gather``/``combine``) comes from one read-only pass over the files the run rewrites
   and, for the others, from the gather index (:mod:`.index`) or a read where it has none;
2. each failure file goes through its steps in memory, and the result is validated and
   proven reversible; what the queue steps need is gathered on the way;
3. the same for the queues (a derived step reverts what it last wrote and derives again);
4. the new bytes staged in one archive, one ledger run for all of it, then one write and
   rename per file (:mod:`migrate.engine.commit`); the run's index beside its ledger file.

Nothing is written before every file has been computed and checked: bad input refuses
the whole run.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate import __version__, clock
from migrate.engine import commit, index
from migrate.engine.plan import check_known, file_steps, plan
from migrate.engine.report import RunReport, StepReport
from migrate.engine.scan import Scan, scan
from migrate.engine.validate import output_problems
from migrate.errors import BadInputError, MigrateError, StepBug, UsageError
from migrate.failures_index import file_rows, refuse
from migrate.ledger import (
    RUNS_DIR,
    FileState,
    Ledger,
    Run,
    StepState,
    checksum,
    entry_line,
    gone_line,
    inputs,
    new_run_id,
)
from migrate.lock import hold
from migrate.parallel import map_files
from migrate.progress import Phase, phase
from migrate.reader import Problem
from migrate.repo import FAILURES_DIR, DataRepo, file_mode
from migrate.steps import STEPS
from migrate.steps.base import RunContext, RunOptions, run_context


@dataclass(slots=True)
class FileOutcome:
    """What one file's pass through the planned steps of a family gave (small: it crosses
    from a worker process to the main one)."""

    rel: str
    line: bytes = b""  # its ledger entry
    after: str = ""  # the checksum of its bytes after the run
    before: str = ""  # the checksum of the bytes the run read
    stamp: int | None = None  # the file's commit.stamp, taken before the read
    changed: bool = False
    step_changed: dict[str, bool] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bug: str | None = None  # a step raised: its traceback
    diff: str = ""
    #: gathered from its new bytes, for later steps and the index (:func:`index.blob`;
    #: None: the parts of the bytes it was given hold, no step changed what rows say)
    parts: bytes | None = None
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
    for path in options.evidence:
        if not os.access(path, os.R_OK):  # (a typo would migrate without the evidence)
            raise UsageError(f"{path}: no such file or folder, or unreadable (--evidence)")
    start = clock.monotonic()
    with hold(repo, "up", dry_run=dry_run):
        ledger = Ledger.load(repo)
        check_known(ledger)
        settled = commit.begin(repo, ledger, dry_run)
        found = scan(repo, ledger, jobs, progress=progress)
        the_plan = file_steps(repo, plan(ledger, "up", target), found)
        report = RunReport(the_plan, dry_run, settled=settled)
        if the_plan.steps:
            try:
                _run(repo, ledger, report, options, diff, progress, after_each, jobs, found)
            except MigrateError:
                if ledger.pending is None and not dry_run:  # nothing replaced: give the
                    commit.clean(repo)  # staged copies' space back
                raise
        report.seconds = clock.monotonic() - start
        return report


def _run(
    repo: DataRepo,
    ledger: Ledger,
    report: RunReport,
    options: RunOptions,
    diff: bool,
    progress,
    after_each,
    jobs: int,
    found: Scan,
) -> None:
    the_plan = report.plan
    problems = list(
        dict.fromkeys(
            str(p)
            for s in the_plan.steps
            for p in s.preflight(repo, [rel for rel, ss in the_plan.files.items() if s in ss])
        )
    )
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            problems,
            hint="fix or remove these lines (see `migrate check`), then run again",
        )
    run = _UpRun(repo, ledger, the_plan, report, run_context(repo, options), diff, jobs, found)
    run.progress = progress
    try:
        run.compute()
        if run.staging is None:
            return
        run.staging.close()
    except BaseException:
        if run.staging is not None:
            run.staging.abandon()
        if run.index is not None:
            run.index.abandon()
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
    ledger.write_pending(record, [*run.lines, *_untouched(the_plan), *map(gone_line, found.gone)])
    run.release()  # (what the replacing does not need: its memory back first)
    report.theirs = commit.commit(repo, run.moves, after_each, progress=progress)
    ledger.finish(record)
    repo.path(commit.ARCHIVE).unlink(missing_ok=True)
    if run.index is not None:
        run.index.finish(repo.path(f"{RUNS_DIR}/{record.id}{index.SUFFIX}"), record.id)
    report.run_id = record.id


class _UpRun:
    """One ``up`` being computed: every file through its planned steps, checked, its new
    bytes staged; what the ledger will say about each file collected on the way."""

    def __init__(self, repo, ledger, the_plan, report, ctx: RunContext, diff, jobs, found):
        self.repo, self.ctx, self.diff, self.jobs = repo, ctx, diff, jobs
        self.report = report
        self.plan = the_plan
        self.found = found
        self.steps = the_plan.steps
        self.prepared = {s.id: s.prepare(ctx) for s in self.steps}
        self.reports = {s.id: StepReport(s, "up") for s in self.steps}
        report.steps = list(self.reports.values())
        self.lines: list[bytes] = []  # each file's ledger entry
        self.moves: list[commit.Move] = []  # the files to replace
        self.staging = None if report.dry_run else commit.Staging(repo)
        #: the index keeps the parts of every step that gathers, planned or not
        self.gatherers = [s for s in STEPS if s.gathers]
        self.known, _ = index.load(repo, RUNS_DIR, ctx.names)
        self.index = None if report.dry_run else index.Writer(repo, RUNS_DIR)
        #: failure file -> its parts as the run found it (:func:`index.blob`, or an index
        #: line: JSON bytes, decoded step by step, so memory follows the files' bytes)
        self.found_parts: dict[str, bytes] = {}
        #: failure file -> the checksum of the bytes the run leaves (files it rewrites)
        self.after: dict[str, str] = {}
        self.inputs: str | None = None
        self.progress: Phase | None = None

    def release(self) -> None:
        """Once the run's ledger file is written: only the moves are needed any more."""
        self.lines, self.found_parts, self.after, self.known = [], {}, {}, {}

    def compute(self) -> None:
        """The failure files through their steps, then the queues through theirs. A failure
        step that gathers is given every failure file's parts as the run found it; a queue
        step, as the failure steps of the run left them."""
        files = self.plan.files
        # the failure files the scan found (sorted): one another writer adds meanwhile is
        # left as they wrote it, behind head, for the next run
        failure_files = [rel for rel, s in self.found.files.items() if s.family == "failures"]
        if any(s.gathers for s in self.steps):
            self.gather(failure_files)
        after_parts: dict[str, bytes] = {}
        for family in ("failures", "queues"):
            steps = [s for s in self.steps if s.family == family]
            if (
                family == "queues" and steps
            ):  # what a derived step derives from, as the run leaves it
                self.inputs = inputs({rel: self._after(rel) for rel in failure_files})
            if not steps:
                continue
            for s in steps:
                if s.gathers:
                    src = self.found_parts if family == "failures" else after_parts
                    s.combine(
                        self.prepared[s.id], _Parts(failure_files, src, self.found_parts, s.id)
                    )
            rels = [rel for rel in files if files[rel][0].family == family]
            bugs: list[str] = []
            problems: list[Problem] = []
            shown = phase(self.progress, f"{'+'.join(s.id for s in steps)} {family}", len(rels))
            for o in map_files(self.file_up, rels, self.jobs, shown):
                bugs += [o.bug] if o.bug else []  # (folded as they come: memory follows
                problems += o.problems  # the report, not the number of files)
                if not (o.bug or o.problems):
                    self.take(o, after_parts)
            _refuse_if_bad(bugs, problems)
        for s in self.steps:
            self.reports[s.id].notes.extend(
                s.summary(self.prepared[s.id], self.reports[s.id].totals)
            )

    def take(self, o: FileOutcome, after_parts: dict[str, bytes]) -> None:
        for step_id, counts in o.counts.items():
            sr = self.reports[step_id]
            sr.files_read += 1
            sr.totals.update(counts)
            sr.changed_files += o.step_changed.get(step_id, False)
            sr.notes.extend(o.notes.get(step_id, ()))
        if o.rel in self.found_parts:  # a failure file: its parts, for the index too
            parts = o.parts if o.parts is not None else self.found_parts[o.rel]
            if o.parts is not None:  # (the failure steps have combined: not needed again)
                del self.found_parts[o.rel]
            after_parts[o.rel] = parts
            self._index(index.entry(o.rel, o.after, parts))
        if o.rel.startswith(FAILURES_DIR + "/"):
            self.after[o.rel] = o.after
        self.lines.append(o.line)
        if o.changed:
            self.moves.append((o.rel, o.after, o.mode, o.stamp))
            if self.staging is not None:
                self.staging.add(o.rel, o.data, o.before)
            if self.report.dry_run:
                self.report.files.append((o.rel, o.diff))

    def _after(self, rel: str) -> str:
        """A failure file's checksum as the run leaves it."""
        seen = self.found.files.get(rel)
        return self.after.get(rel) or (seen.digest if seen is not None else "")

    def _index(self, line: bytes) -> None:
        if self.index is not None:
            self.index.add(line)

    def gather(self, failure_files: list[str]) -> None:
        """Every failure file's parts as the run found it: read for the files the run
        rewrites, from the gather index for the others (read where it has none). A queue
        step would derive status from records it cannot read: refused here."""
        in_run = self.plan.files
        to_read = []
        for rel in failure_files:
            seen = self.found.files.get(rel)
            hit = self.known.get((rel, seen.digest)) if seen and rel not in in_run else None
            if hit is not None:
                self.found_parts[rel] = hit
            else:
                to_read.append(rel)
        problems: list[Problem] = []
        shown = phase(self.progress, "what the steps need from other files", len(to_read))
        for rel, parts, probs in map_files(self._parts_of, to_read, self.jobs, shown):
            self.found_parts[rel] = parts
            if rel not in in_run:
                problems += probs
                if not probs:  # (kept for the next run: this one does not rewrite it)
                    digest = self.found.files[rel].digest
                    self._index(index.entry(rel, digest, parts))
        if any(s.family == "queues" for s in self.steps):
            refuse(problems, "nothing was written")

    def _parts_of(self, rel: str) -> tuple[str, bytes, list[Problem]]:
        return rel, *self.parts(rel, self.repo.read_bytes(rel))

    def parts(self, rel: str, data: bytes) -> tuple[bytes, list[Problem]]:
        """What every gathering step takes from a failure file's bytes (a JSON blob)."""
        rec = index.Recorder(self.ctx.names)
        rows, problems = file_rows(rel, data, rec, want=None)
        return index.blob(rec.seen, {s.id: s.gather(rel, rows) for s in self.gatherers}), problems

    def file_up(self, rel: str) -> FileOutcome:
        """One file through its steps, in memory (in a worker)."""
        steps = self.plan.files[rel]
        out = FileOutcome(rel)
        out.stamp = commit.stamp(self.repo.fspath(rel))
        data = disk = self.repo.read_bytes(rel)  # (disk: what the file holds now)
        digest = out.after = out.before = checksum(data)
        seen = self.found.files.get(rel)
        state = seen.state if seen is not None else None  # (decoded here, in the worker)
        if state is not None and digest == state.after:
            fs = _copy(state)
        else:  # new, or rewritten by another writer: taken from its bytes
            fs = FileState(rel, digest, [], self.plan.ats.get(rel))
            replaced = seen.replaced if seen is not None else None
            if replaced is not None:  # their save of the tool's bytes: what they carried
                try:  # over of its values is taken out first
                    data = self._carried_out(rel, data, replaced, steps)
                except Exception:
                    out.bug = (
                        f"{rel}: taking out the values carried over:\n{traceback.format_exc()}"
                    )
                    return out
                fs.origin = checksum(data)
        cur = data
        rows_moved = False
        for step in steps:
            given, previous, last = cur, None, None
            if step.derived and fs.steps and fs.steps[-1].id == step.id:  # derived again:
                last = fs.steps.pop()  # from the bytes before it last ran
                previous = cur
                try:
                    given = (
                        last.restore
                        if last.restore is not None
                        else step.down(rel, cur, last.patch)
                    )
                except Exception:
                    out.bug = f"step {step.id} (down) on {rel}:\n{traceback.format_exc()}"
                    return out
            try:
                res = step.up(rel, given, self.prepared[step.id])
                exact = res.exact or step.down(rel, res.data, res.patch) == given
                same = previous is not None and step.same(previous, res.data)
            except Exception:
                out.bug = f"step {step.id} on {rel}:\n{traceback.format_exc()}"
                return out
            out.counts[step.id] = dict(res.counts)  # (plain: cheaper to send)
            if res.notes and not same:
                out.notes[step.id] = res.notes
            if res.problems:
                out.problems.extend(res.problems)
                return out
            if same:  # derived again, it says what it said: left as it is
                fs.steps.append(dataclasses.replace(last, inputs=self.inputs))
                continue
            new = res.data
            out.step_changed[step.id] = new != cur
            rows_moved |= step.changes_rows and new != given
            restore = None if exact else given  # down cannot rebuild these: the ledger keeps
            fs.steps.append(
                StepState(
                    step.id,
                    checksum(new) if new != given else None,
                    res.patch,
                    restore,
                    inputs=self.inputs if step.derived else None,
                )
            )
            cur = new
        if cur != disk:
            version = steps[-1].produces
            out.problems, bugs = output_problems(steps[0].family, rel, disk, cur, version)
            if bugs:
                out.bug = f"steps {', '.join(fs.step_ids)} wrote what the v{version} model" + (
                    " refuses:\n" + "\n".join(str(p) for p in bugs)
                )
            if out.problems or bugs:
                return out
            out.changed, out.data, out.after = True, cur, checksum(cur)
            out.mode = file_mode(self.repo.fspath(rel))
            if self.diff:
                out.diff = _diff(rel, disk, cur)
        out.line = entry_line(fs)
        if rows_moved:  # what rows say changed: gathered again from the new bytes
            out.parts, out.problems = self.parts(rel, cur)
        return out

    def _carried_out(self, rel: str, data: bytes, replaced: FileState, steps) -> bytes:
        """Another writer saved a file a derived step had written, from its bytes (tsuku's
        jobs read the queue and save it whole): the step's values they carried over are the
        step's, not theirs (``Step.carried_over``), and are taken out before it derives
        again, so that a rollback later gives what they wrote without the tool's values."""
        last = replaced.steps[-1] if replaced.steps else None
        step = next((s for s in steps if last is not None and s.id == last.id), None)
        if step is None or not step.derived:
            return data
        return step.carried_over(rel, data, last.patch) or data


class _Parts:
    """The ``(file, part)`` pairs a step's ``combine`` is given, decoded as it iterates
    (it may iterate more than once): the parts of thousands of files are never all
    decoded at once."""

    def __init__(self, rels: list[str], first: dict[str, bytes], other: dict[str, bytes], sid):
        self.rels, self.first, self.other, self.sid = rels, first, other, sid

    def __iter__(self):
        for rel in self.rels:
            blob = self.first.get(rel) or self.other[rel]
            yield rel, index.parts_of(blob, self.sid)


def _untouched(the_plan) -> list[bytes]:
    """Files other writers added or rewrote that need no step (a `migrate ingest` file, a
    hand edit of a v2 line): known from this run on, at their content's version, so that
    `verify` stops naming them once a run has looked at them (their queue status is
    derived again with them all the same)."""
    out = []
    for seen in the_plan.others:
        if seen.rel in the_plan.files or not seen.digest:  # (others: never "same" else)
            continue
        # (the bytes the scan saw and the plan was made from: a save since is caught up
        # by the next run, never recorded as needing no step)
        out.append(entry_line(FileState(seen.rel, seen.digest, [], the_plan.ats.get(seen.rel))))
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
    """The run's options as the committed ledger keeps them: no local absolute path."""
    out: dict[str, Any] = {}
    if options.evidence:
        out["evidence"] = [_source(repo, path) for path in options.evidence]
    if options.recipes:
        out["recipes"] = _source(repo, options.recipes)
    if options.quarantine:
        out["quarantine"] = True
    return out


def _source(repo: DataRepo, path: str) -> str | dict[str, str]:
    """A folder (or file) the run read: inside the repo, its path relative to the repo;
    outside, its name and a sha256 of what was read from it (each file's path below it
    and bytes), which says whether two runs read the same evidence, on any machine."""
    where = Path(path).resolve()
    if where.is_relative_to(repo.root):
        return where.relative_to(repo.root).as_posix() or "."
    h = hashlib.sha256()
    files = [where] if where.is_file() else sorted(p for p in where.rglob("*") if p.is_file())
    for f in files:
        h.update(f.relative_to(where).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"name": where.name, "sha256": h.hexdigest()}


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
