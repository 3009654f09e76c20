"""``down``: revert the planned steps, each file read once and written once.

Every file is computed and checked before anything is written, so a ``down`` either
reverts the whole plan or refuses, naming the files. A file's bytes must be those the
ledger says the tool left (else it was changed since: refused, or with ``--force``
converted down as it is); each step's ``down`` must give back the exact bytes recorded
before it. Files the ledger does not know (written after the step, e.g. by ``migrate
ingest``) go through the step's ``down_unrecorded``. Reverting to base removes the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import __version__, clock
from migrate.engine import commit
from migrate.engine.plan import check_known, plan
from migrate.engine.report import RunReport, StepReport
from migrate.errors import DataChanged, MigrateError
from migrate.ledger import FileState, Ledger, Run, checksum, entry_line, new_run_id
from migrate.lock import hold
from migrate.parallel import map_files
from migrate.repo import DataRepo, file_mode
from migrate.steps import Step


@dataclass
class FileRevert:
    rel: str
    line: bytes = b""  # the file's ledger entry after the run (b"": none)
    after: str = ""
    changed: bool = False
    reverted: list[str] = field(default_factory=list)  # steps that changed its bytes
    note: str = ""
    refused: str = ""  # why this file cannot be reverted
    edited: bool = False  # changed since the ledger recorded it
    diff: str = ""
    data: bytes = b""  # the new bytes, when changed
    mode: int | None = None  # the file's permission bits, which its new version keeps


def down(
    repo: DataRepo,
    target: str | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
    after_each=None,
    jobs: int = 1,
    progress=None,
) -> RunReport:
    """Revert steps down to ``target`` (default: the last applied step only)."""
    start = clock.monotonic()
    with hold(repo, "down", dry_run=dry_run):
        ledger = Ledger.load(repo)
        check_known(ledger)
        settled = commit.begin(repo, ledger, jobs, dry_run)
        the_plan = plan(ledger, "down", target)
        report = RunReport(the_plan, dry_run, settled=settled)
        if the_plan.steps:
            try:
                _run(repo, ledger, report, force, after_each, jobs, progress)
            except MigrateError:
                if ledger.pending is None and not dry_run:
                    commit.clean(repo)
                raise
        report.seconds = clock.monotonic() - start
        return report


def _run(repo, ledger: Ledger, report: RunReport, force, after_each, jobs, progress) -> None:
    the_plan = report.plan
    states = ledger.states()
    reverting = [s for s in the_plan.steps]
    reports = {s.id: StepReport(s, "down") for s in reverting}
    report.steps = list(reports.values())
    lines: list[bytes] = []  # each file's ledger entry
    moves: list[commit.Move] = []  # the files to replace
    edited: list[str] = []
    refused: list[str] = []
    staging = None if report.dry_run else commit.Staging(repo)
    try:
        for family in ("queues", "failures"):
            steps = [s for s in reverting if s.family == family]
            if not steps:
                continue
            known = [p for p in states if _family_of(p) == family]
            files = list(dict.fromkeys([*known, *steps[0].files(repo)]))

            def one(rel: str, steps=steps) -> FileRevert:
                return _file_down(repo, rel, steps, states.get(rel), force, report.dry_run)

            for o in map_files(one, files, jobs, progress):
                for sid in o.reverted:
                    reports[sid].changed_files += 1
                for s in steps:
                    reports[s.id].files_read += 1
                if o.note:
                    reports[steps[0].id].notes.append(o.note)
                if o.edited:
                    edited.append(o.rel)
                if o.refused:
                    refused.append(o.refused)
                if report.dry_run and o.changed:
                    report.files.append((o.rel, o.diff))
                if o.line:
                    lines.append(o.line)
                if o.changed:
                    moves.append((o.rel, o.after, o.mode))
                    if staging is not None and not (edited or refused):
                        staging.add(o.rel, o.data)
        if edited:
            raise DataChanged(
                f"{len(edited)} file(s) changed since migrate wrote them: "
                + ", ".join(edited[:5])
                + (" ..." if len(edited) > 5 else "")
                + "; nothing was reverted",
                hint="`migrate verify` lists them; restore them (git checkout -- FILE) to"
                " revert exactly, or pass --force to convert them down as they are now",
            )
        if refused:
            raise DataChanged(
                refused[0] + "; nothing was reverted", hint="restore the file from git"
            )
        if staging is None:
            return
        staging.close()
    except BaseException:
        if staging is not None:
            staging.abandon()
        raise
    run = Run(
        new_run_id(ledger),
        "down",
        clock.now_iso(),
        __version__,
        the_plan.current,
        the_plan.target,
        [s.id for s in reverting],
        {"force": True} if force else {},
        {sr.step.id: {"files_changed": sr.changed_files} for sr in report.steps},
    )
    ledger.write_pending(run, lines)
    commit.commit(repo, moves, jobs, after_each)
    if the_plan.target is None:
        ledger.remove_all()
    else:
        ledger.finish(run)
        repo.path(commit.ARCHIVE).unlink(missing_ok=True)
    report.run_id = run.id


def _family_of(rel: str) -> str:
    return "failures" if rel.startswith("data/failures/") else "queues"


def _file_down(
    repo: DataRepo,
    rel: str,
    steps: list[Step],
    state: FileState | None,
    force: bool,
    dry_run: bool,
) -> FileRevert:
    out = FileRevert(rel)
    if not repo.exists(rel):
        if state is not None and state.after != state.origin and not force:
            out.edited = True
        elif state is not None:
            out.note = f"{rel}: deleted since migrate wrote it; left deleted"
        return out
    data = repo.read_bytes(rel)
    cur = data
    if state is not None and checksum(data) != state.after and state.after == state.origin:
        state = None  # migrate never changed it, and another program has since: theirs
    if state is None:  # written after the step by another program (e.g. `migrate ingest`)
        for step in steps:
            try:
                cur = step.down_unrecorded(rel, cur) or cur
            except (KeyError, TypeError, ValueError) as exc:
                out.refused = (
                    f"{rel}: written after step {step.id} and not convertible down"
                    f" ({type(exc).__name__}: {exc})"
                )
                return out
        if cur != data:
            out.note = f"{rel}: not written by migrate, converted down as well"
            # known from now on, as it is after this run (the run's ledger file must name
            # every file it replaces, for a killed run to be finished)
            out.line = entry_line(FileState(rel, checksum(cur)))
    else:
        if checksum(data) != state.after and not force:
            out.edited = True
            return out
        ids = {s.id for s in steps}
        by_id = {s.id: s for s in steps}
        kept = [st for st in state.steps if st.id not in ids]
        sums = state.checksums()
        for i in range(len(state.steps) - 1, -1, -1):
            st = state.steps[i]
            if st.id not in ids:
                continue
            try:
                new = (
                    st.restore if st.restore is not None else by_id[st.id].down(rel, cur, st.patch)
                )
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                out.refused = (
                    f"{rel}: cannot revert step {st.id} on this file as it is now"
                    f" ({type(exc).__name__}: {exc})"
                )
                return out
            if checksum(new) != sums[i][0] and not force:
                out.refused = f"{rel}: reverting step {st.id} does not give back the recorded bytes"
                return out
            if new != cur:
                out.reverted.append(st.id)
            cur = new
        fs = FileState(rel, state.origin, kept)
        if fs.after != checksum(cur):  # --force on a file edited since: as it is now
            fs = FileState(rel, checksum(cur))
        out.line = entry_line(fs)
    out.changed = cur != data
    out.after = checksum(cur)
    if out.changed and not dry_run:
        out.data = cur
        out.mode = file_mode(repo.fspath(rel))
    return out
