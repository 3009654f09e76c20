"""``down``: revert the planned steps, each file read once and written once, without
losing what other writers wrote since.

Each file the ledger says a reverted step changed gets one rule
(:func:`.lifecycle.backward`; ``down --dry-run`` shows which): its exact bytes back,
its values reverted entry by entry (a queue another writer saved since: theirs stay),
left as its writer wrote it, or left deleted. A file migrate never wrote (a new batch,
``migrate ingest``'s output) is not touched.

A file is refused only where its revert would overwrite another writer's values (a queue
that no longer parses), naming it; every file is computed and checked before anything is
written, so a ``down`` either reverts the whole plan or refuses with nothing reverted.
Reverting to base removes migrate's folder.
"""

from __future__ import annotations

from migrate import __version__, clock
from migrate.engine.lifecycle import EXACT, THEIRS, Revert, backward
from migrate.engine.plan import known_ledger, plan
from migrate.engine.report import RunReport, StepReport
from migrate.errors import DataChanged, MigrateError
from migrate.parallel import map_files
from migrate.progress import phase
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import Family
from migrate.store import staging
from migrate.store.ledger import Ledger, LedgerState, Run, checksum
from migrate.store.lock import hold


def down(
    store,
    target: str | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
    after_each=None,
    jobs: int = 1,
    progress=None,
    registry: Registry = REGISTRY,
) -> RunReport:
    """Revert steps down to ``target`` (default: the last applied step only). ``force``
    leaves a file that cannot be reverted without overwriting another writer's values as
    it is, instead of refusing."""
    start = clock.monotonic()
    with hold(store, "down", dry_run=dry_run):
        ledger = known_ledger(store, registry)
        settled = staging.begin(store, ledger, dry_run)
        the_plan = plan(ledger, "down", target, registry)
        report = RunReport(the_plan, dry_run, settled=settled)
        if the_plan.steps:
            try:
                _run(store, ledger, report, force, after_each, jobs, progress, registry)
            except MigrateError:
                if ledger.pending is None and not dry_run:
                    staging.clean(store)
                raise
        report.seconds = clock.monotonic() - start
        return report


def _run(store, ledger: Ledger, report: RunReport, force, after_each, jobs, progress, registry):
    state = ledger.state(registry)
    sink = None if report.dry_run else staging.Staging(store)
    try:
        moves = _revert(store, state, report, force, jobs, progress, sink)
        if report.refused and not report.dry_run:
            first = report.refused[0]
            raise DataChanged(
                f"{len(report.refused)} file(s) cannot be reverted without overwriting"
                f" another writer's values, first: {first}; nothing was reverted",
                hint="restore them from git (a queue that parses, or as migrate left it);"
                " --force leaves them as they are",
            )
        if sink is None:
            return
        sink.close()
    except BaseException:
        if sink is not None:
            sink.abandon()
        raise
    _write(store, ledger, report, moves, state, after_each, progress, registry, force)


def _revert(store, state: LedgerState, report: RunReport, force, jobs, progress, sink):
    """Every file a reverted step changed, through :func:`backward` (``jobs`` processes),
    queues first (their status came from the records); each new version to ``sink`` as it
    comes. Returns the moves that replace them."""
    reverting = list(report.plan.steps)
    reports = {s.id: StepReport(s, "down") for s in reverting}
    report.steps = list(reports.values())
    moves: list[staging.Move] = []
    for fam in reversed(list(Family)):
        steps = [s for s in reverting if s.family is fam]
        if not steps:
            continue
        ids = {s.id for s in steps}
        files = [p for p, fs in state.items() if Family.of(p) is fam and ids & set(fs.step_ids)]
        for rel in fam.files(store):  # written by others, never by migrate: theirs
            if rel not in state and store.read_or_none(rel):
                report.rules[THEIRS] += 1
                report.rule_files.append((rel, THEIRS, {}))

        def one(rel: str, steps=steps) -> tuple[Revert, tuple]:
            stamp = staging.stamp(store.fspath(rel))
            data = store.read_or_none(rel)
            out = backward(rel, data, state[rel], steps, force)
            before = checksum(data) if data is not None else ""
            return out, (stamp, before)

        shown = phase(progress, f"revert {'+'.join(s.id for s in steps)} {fam.value}", len(files))
        for out, (stamp, before) in map_files(one, files, jobs, shown):
            _tally(report, reports, steps, out)
            if out.changed:
                if sink is not None and not report.refused:
                    sink.add(out.rel, out.data, before)
                moves.append((out.rel, checksum(out.data), stamp))
    return moves


def _tally(report: RunReport, reports, steps, out: Revert) -> None:
    for sid in out.reverted:
        reports[sid].changed_files += 1
    for s in steps:
        reports[s.id].files_read += 1
    if out.note:
        reports[steps[0].id].notes.append(out.note)
    if out.refused:
        report.refused.append(out.refused)
    if out.rule:
        report.rules[out.rule] += 1
        if out.rule != EXACT:
            report.rule_files.append((out.rel, out.rule, dict(out.counts)))
    if out.changed and report.dry_run:
        report.files.append((out.rel, ""))


def _write(store, ledger, report, moves, state, after_each, progress, registry, force) -> None:
    """The run written as pending (its header alone), the files replaced, the run
    finished (at base: migrate's folder gone)."""
    the_plan = report.plan
    run = Run(
        ledger.new_run_id(),
        "down",
        clock.now_iso(),
        __version__,
        the_plan.current,
        the_plan.target,
        [s.id for s in the_plan.steps],
        {"force": True} if force else {},
        {sr.step.id: {"files_changed": sr.changed_files} for sr in report.steps},
    )
    ledger.write_pending(run, [])
    report.theirs = staging.commit(store, moves, after_each, progress=progress)
    revert_rewritten(store, ledger, run.steps, report.theirs, state, registry)
    if the_plan.target is None:
        ledger.remove_all()
    else:
        ledger.finish(run)
        store.remove(staging.ARCHIVE)
    report.run_id = run.id


def revert_rewritten(
    store,
    ledger: Ledger,
    step_ids: list[str],
    rels: list[str],
    state: LedgerState | None = None,
    registry: Registry = REGISTRY,
) -> None:
    """Files another writer saved while a ``down`` ran (or after it was killed), which it
    therefore left: the rule a ``down`` gives them now (a queue's values reverted entry by
    entry, theirs kept), from the state the ``down`` started from (the ledger's finished
    runs). Idempotent: a second pass finds nothing that holds."""
    state = state if state is not None else ledger.state(registry)
    steps = [s for s in registry if s.id in step_ids and s.derived]
    for rel in rels:
        fs = state.get(rel)
        if fs is None or Family.of(rel) is not Family.QUEUES:
            continue  # (a failure file they saved is theirs: left as they wrote it)
        out = backward(rel, store.read_or_none(rel), fs, steps, True)
        if out.changed:
            store.write_atomic(rel, out.data)
