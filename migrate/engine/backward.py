"""``down``: revert the planned steps, each file read once and written once, without
losing what other writers wrote since.

Each file gets one rule (``down --dry-run`` shows which):

* **exact** — its bytes are those migrate left: each step's ``down`` gives back the exact
  bytes recorded before it (checked against the ledger's checksums);
* **entry by entry** — another writer rewrote it since (tsuku's jobs save the queue every
  few minutes): each value a step set that still holds goes back, theirs stay
  (``Step.down_rewritten``);
* **left to its writer** — a failure file another writer added or replaced since the last
  run is theirs: left as they wrote it, and so is a file they deleted.

A file is refused only where its revert would overwrite another writer's values (a queue
that no longer parses, a run that did not record the values it set), naming it; every
file is computed and checked before anything is written, so a ``down`` either reverts the
whole plan or refuses with nothing reverted. Reverting to base removes the ledger.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from migrate import __version__, clock
from migrate.engine import commit
from migrate.engine.plan import check_known, plan
from migrate.engine.report import RunReport, StepReport
from migrate.errors import DataChanged, MigrateError
from migrate.ledger import FileState, Ledger, Run, checksum, entry_line, new_run_id
from migrate.lock import hold
from migrate.parallel import map_files
from migrate.progress import phase
from migrate.repo import DataRepo, file_mode
from migrate.steps import STEPS, Step

#: the rules a file is reverted by (``FileRevert.rule``)
EXACT = "exact bytes back"
ENTRIES = "reverted entry by entry"
THEIRS = "left as its writer wrote it"
GONE = "deleted by another writer: left deleted"


@dataclass
class FileRevert:
    rel: str
    rule: str = ""  # one of the rules above ("": no step had changed it)
    line: bytes = b""  # the file's ledger entry after the run (b"": none)
    after: str = ""
    before: str = ""  # the checksum of the bytes the run read
    stamp: int | None = None  # the file's commit.stamp, taken before the read
    changed: bool = False
    reverted: list[str] = field(default_factory=list)  # steps that changed its bytes
    counts: Counter[str] = field(default_factory=Counter)  # entry by entry: what went back
    note: str = ""
    refused: str = ""  # why this file cannot be reverted
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
    """Revert steps down to ``target`` (default: the last applied step only). ``force``
    leaves a file that cannot be reverted without overwriting another writer's values as
    it is, instead of refusing."""
    start = clock.monotonic()
    with hold(repo, "down", dry_run=dry_run):
        ledger = Ledger.load(repo)
        check_known(ledger)
        settled = commit.begin(repo, ledger, dry_run)
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
    reverting = list(the_plan.steps)
    reports = {s.id: StepReport(s, "down") for s in reverting}
    report.steps = list(reports.values())
    lines: list[bytes] = []  # each file's ledger entry
    moves: list[commit.Move] = []  # the files to replace
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
                return _file_down(repo, ledger, rel, steps, states.get(rel), force, report.dry_run)

            ids = "+".join(s.id for s in steps)
            shown = phase(progress, f"revert {ids} {family}", len(files))
            for o in map_files(one, files, jobs, shown):
                for sid in o.reverted:
                    reports[sid].changed_files += 1
                for s in steps:
                    reports[s.id].files_read += 1
                if o.note:
                    reports[steps[0].id].notes.append(o.note)
                if o.refused:
                    refused.append(o.refused)
                if o.rule:
                    report.rules[o.rule] += 1
                    if o.rule != EXACT:
                        report.rule_files.append((o.rel, o.rule, dict(o.counts)))
                if report.dry_run and o.changed:
                    report.files.append((o.rel, o.diff))
                if o.line:
                    lines.append(o.line)
                if o.changed:
                    moves.append((o.rel, o.after, o.mode, o.stamp))
                    if staging is not None and not refused:
                        staging.add(o.rel, o.data, o.before)
        if refused:
            report.refused = refused
            if not report.dry_run:
                raise DataChanged(
                    f"{len(refused)} file(s) cannot be reverted without overwriting another"
                    f" writer's values, first: {refused[0]}; nothing was reverted",
                    hint="restore them from git (a queue that parses, or as migrate left it);"
                    " --force leaves them as they are",
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
    lines.clear()  # (its memory back before the files are replaced)
    report.theirs = commit.commit(repo, moves, after_each, progress=progress)
    revert_rewritten(repo, ledger, run.steps, report.theirs, states)
    if the_plan.target is None:
        ledger.remove_all()
    else:
        ledger.finish(run)
        repo.path(commit.ARCHIVE).unlink(missing_ok=True)
    report.run_id = run.id


def revert_rewritten(
    repo: DataRepo, ledger: Ledger, step_ids: list[str], rels: list[str], states=None
) -> None:
    """Files another writer saved while a ``down`` ran (or after it was killed), which it
    therefore left: the rule a ``down`` gives them now (a queue reverted entry by entry,
    their values kept; a failure file left), from the states the ``down`` started from
    (the ledger's finished runs). Idempotent: a second pass finds nothing that holds."""
    states = states if states is not None else ledger.states()
    steps = [s for s in STEPS if s.id in step_ids]
    for rel in rels:
        family = [s for s in reversed(steps) if s.family == _family_of(rel)]
        o = _file_down(repo, ledger, rel, family, states.get(rel), True, False)
        if o.changed:
            repo.write_atomic(rel, o.data)


def _family_of(rel: str) -> str:
    return "failures" if rel.startswith("data/failures/") else "queues"


def _file_down(
    repo: DataRepo,
    ledger: Ledger,
    rel: str,
    steps: list[Step],
    state: FileState | None,
    force: bool,
    dry_run: bool,
) -> FileRevert:
    out = FileRevert(rel)
    if not repo.exists(rel):
        if state is not None and state.after != state.origin:
            out.rule = GONE  # deleted by another writer: their deletion stays
        return out
    if state is None:  # added by another writer since the last run: theirs
        out.rule = THEIRS
        return out
    ids = {s.id for s in steps}
    if not state.steps and state.at in ids:  # written by another writer at a version this
        out.rule = THEIRS  # down goes below, recorded by a catch-up: left as written, and
        below = [s.id for s in STEPS if s.family == _family_of(rel) and s.id < min(ids)]
        at = below[-1] if below else None  # recorded at the version the repo goes to, so
        out.line = entry_line(FileState(rel, state.origin, [], at))  # that `up` gives it
        return out  # again what it lacks (the evidence a run then brings)
    out.stamp = commit.stamp(repo.fspath(rel))
    data = repo.read_bytes(rel)
    out.before = checksum(data)
    if out.before != state.after:  # (after a merge: as the other branch's run left it?)
        state = ledger.state_left(rel, out.before) or state
    if out.before != state.after:
        return _rewritten(repo, rel, data, steps, state, force, dry_run, out)
    cur = data
    by_id = {s.id: s for s in steps}
    kept = [st for st in state.steps if st.id not in ids]
    sums = state.checksums()
    for i in range(len(state.steps) - 1, -1, -1):
        st = state.steps[i]
        if st.id not in ids:
            continue
        try:
            new = st.restore if st.restore is not None else by_id[st.id].down(rel, cur, st.patch)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            out.refused = (
                f"{rel}: step {st.id} cannot be reverted on the bytes it left"
                f" ({type(exc).__name__}: {exc}); the ledger does not match this migrate"
            )
            return out
        if checksum(new) != sums[i][0]:
            out.refused = f"{rel}: reverting step {st.id} does not give back the recorded bytes"
            return out
        if new != cur:
            out.reverted.append(st.id)
        cur = new
    out.rule = EXACT if out.reverted else ""
    out.line = entry_line(FileState(rel, state.origin, kept, state.at))
    return _result(repo, out, data, cur, dry_run)


def _rewritten(repo, rel, data, steps, state: FileState, force, dry_run, out: FileRevert):
    """A file another writer rewrote since migrate wrote it: each step reverts what of its
    change still holds (a queue, entry by entry) or leaves the file to its writer."""
    by_id = {s.id: s for s in steps}
    cur = data
    for st in reversed(state.steps):
        if st.id not in by_id:
            continue
        try:
            res = by_id[st.id].down_rewritten(rel, cur, st.patch)
        except (KeyError, TypeError, ValueError) as exc:
            if force:
                out.note = f"{rel}: left as its writer wrote it (--force): {exc}"
                break
            out.refused = (
                f"{rel}: rewritten by another writer since step {st.id} wrote it, and it"
                f" cannot be reverted entry by entry without overwriting their values ({exc})"
            )
            return out
        if res is None:
            continue
        new, counts = res
        out.counts.update(counts)
        if new != cur:
            out.reverted.append(st.id)
        cur = new
    out.rule = ENTRIES if out.counts else THEIRS
    if cur != data:  # (named in the run's file: a killed run is finished from it)
        out.line = entry_line(FileState(rel, checksum(cur)))
    return _result(repo, out, data, cur, dry_run)


def _result(repo: DataRepo, out: FileRevert, data: bytes, cur: bytes, dry_run: bool):
    """``out`` for a file read as ``data`` (``out.before``: its checksum) that the run
    leaves as ``cur``."""
    out.changed = cur != data
    out.after = checksum(cur) if out.changed else out.before
    if out.changed and not dry_run:
        out.data = cur
        out.mode = file_mode(repo.fspath(out.rel))
    return out
