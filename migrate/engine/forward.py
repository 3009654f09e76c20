"""``up``: apply the planned steps, each file read once and written once.

What the run does is computed by :func:`.compute.compute`, each new version staged in one
archive as it comes. Then: nothing changed and the repo's version does not move, nothing
is written, not even a ledger run; else one ledger run (pending), one write in place per
file (:mod:`migrate.store.staging`), the run finished. Nothing is replaced before every
file has been computed and checked: bad input refuses the whole run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from migrate import __version__, clock
from migrate.engine.compute import Computed, compute
from migrate.engine.plan import Plan, known_ledger
from migrate.engine.report import RunReport
from migrate.errors import UsageError
from migrate.layout import IGNORE_FILE, RUNS_DIR
from migrate.progress import Phase
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import RunOptions
from migrate.store import cache, staging
from migrate.store.ledger import Ledger, Run
from migrate.store.lock import hold


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
    """Apply steps up to ``target``. ``after_each(i)`` is a test hook run after each file written;
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
        sink = None if dry_run else staging.Staging(store)
        try:
            done = compute(store, ledger, target, options, diff, jobs, progress, registry, sink)
            done.report.settled, done.report.dry_run = settled, dry_run
            if not done.writes:  # (nothing changes: nothing to do, nothing written)
                done.report.plan = Plan("up", (), ledger.current, ledger.current)
                done.report.steps = []
                if sink is not None:
                    sink.abandon()
            if not dry_run:
                done.report.files = []
                done.prepared = {}  # (the steps' contexts: not needed to write; memory back)
                # the cache first (content-addressed: right whether or not the files are
                # written yet), then what it was built from let go: memory for the write
                _save_cache(store, done, written=done.writes)
                done.seen = {}
                if done.writes:
                    _write(store, ledger, done, after_each, progress)
        except BaseException:
            if sink is not None:
                sink.abandon()
            if ledger.pending is None and not dry_run:  # nothing replaced: give the
                staging.clean(store)  # staged copies' space back
            raise
        done.report.seconds = clock.monotonic() - start
        return done.report


def _write(store, ledger: Ledger, done: Computed, after_each, progress) -> None:
    """The staged versions made durable, the run written as pending, the files replaced,
    the run finished."""
    the_plan = done.plan
    done.sink.close()
    moves = [c.move for c in done.changes]
    applied = {sid for c in done.changes for sid in c.steps}
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
    ledger.write_pending(run, [c.record for c in done.changes])
    from migrate.engine.recipes import remember

    remember(store, done.ctx.options.recipes, run.options.get("recipes"))
    done.report.theirs = staging.commit(store, moves, after_each, progress=progress)
    ledger.finish(run)
    store.remove(staging.ARCHIVE)
    _drop_old_indexes(store)
    done.report.run_id = run.id


def _drop_old_indexes(store) -> None:
    """migrate 0.3 committed its gather index beside each run: a cache, now kept out of
    the commit (:mod:`migrate.store.cache`). A run that writes takes them out."""
    folder = store.path(RUNS_DIR)
    for p in folder.glob("*.index.jsonl") if folder.is_dir() else ():
        store.remove(f"{RUNS_DIR}/{p.name}")


def _save_cache(store, done: Computed, written: bool) -> None:
    """The parts of every failure file as the run leaves it, when any was computed."""
    seen = done.seen
    if not seen or not any(s.parts is not None for s in seen.values()):
        return
    fresh = done.rewritten or any(not s.cached and s.parts is not None for s in seen.values())
    if not fresh:
        return
    own = store.cache_dir().is_relative_to(store.path("data"))
    if own and not written and not store.path(IGNORE_FILE).is_file():
        return  # (a run that writes nothing creates nothing in data/: not migrate's folder)
    after = {c.rel: c.after for c in done.changes}
    lines = (
        s.parts
        if s.parts.startswith(b'{"path"')
        else cache.entry(rel, after.get(rel, s.digest), s.parts)
        for rel, s in seen.items()
        if s.parts is not None and s.digest
    )
    cache.save(store, done.cache_versions, lines)


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
