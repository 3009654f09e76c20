"""The engine: plans, dry-runs, applies and reverts steps, keeping the ledger honest.

The plan is a value (:class:`Plan`): ``plan(ledger, "up", "head")`` can be printed and
tested without touching files, and the same plan drives real runs and dry runs.

Crash safety, for ``up`` of a step:
  1. compute every file's new bytes and stage them next to it (``.NAME.migrate-stage``,
     fsynced); verify that ``down(up(x)) == x`` byte for byte, else keep ``x`` itself in
     the ledger;
  2. write the ledger entry with ``state: applying``, its checksums and patches (durable);
  3. rename each staged file over its original (atomic per file);
  4. mark the entry ``applied``.
A run killed before 2 leaves only stage files (cleaned by the next run); killed after 2,
the next ``up`` renames the remaining staged files (or finds them done by checksum) and
``down`` reverts exactly the files already replaced. ``down`` mirrors this with
``state: reverting``.

Spares: when the next step of the same run rewrites the same files (0001 then 0002), step
3 first gives each big replaced file a second name (``.NAME.migrate-spare``, a hard link),
and the next step writes its staged copy over that file's pages instead of allocating new
ones. Only a file with no other link, no other open file description and the owner a new
file would have is rewritten (``_open_spare``; a bind mount of the file is not seen). The
next step drops each spare it does not take as soon as it is done with that file, and all
of them if the disk fills up (``_stage``), so spares never make a run need more space than
it did without them. A spare is never needed for recovery (the ledger rebuilds what it
held), so a run that writes removes those it finds before anything else (``_load``).
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import signal
import stat
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from migrate import __version__, clock
from migrate.errors import (
    BadInputError,
    DataChanged,
    LedgerError,
    MigrateError,
    RepoError,
    UsageError,
)
from migrate.ledger import FileEntry, Ledger, StepEntry
from migrate.lock import hold
from migrate.parallel import long_lived, map_files
from migrate.reader import Problem
from migrate.repo import (
    LEDGER_DIR,
    TMP_SUFFIX,
    DataRepo,
    file_mode,
    file_sha256,
    sha256,
    sync_dir,
)
from migrate.steps import STEPS, Step, by_id

try:
    import fcntl

    _SETLEASE = getattr(fcntl, "F_SETLEASE", None)  # Linux
except ImportError:  # pragma: no cover - not a POSIX system
    _SETLEASE = None

STAGE_SUFFIX = ".migrate-stage"
#: a file replaced by one step, kept for the next step of the run to rewrite in place
SPARE_SUFFIX = ".migrate-spare"
Progress = Callable[[Iterable[Any]], Iterable[Any]] | None


# ---------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Plan:
    direction: str  # "up" or "down"
    steps: tuple[Step, ...]
    current: str | None
    target: str | None

    def describe(self) -> list[str]:
        if not self.steps:
            return [f"nothing to do: at {self.current or 'base'}"]
        verb = "apply" if self.direction == "up" else "revert"
        return [f"{verb} {s.id} {s.name}: {s.description}" for s in self.steps]


def resolve_target(target: str | None, direction: str, current: str | None) -> str | None:
    """``head``, ``base``, a step id or unique prefix/name, ``+N``/``-N``; None means base."""
    ids = [s.id for s in STEPS]
    pos = ids.index(current) if current else -1
    if target in (None, ""):
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


def check_ledger_known(ledger: Ledger) -> None:
    """Every recorded step is known, and the steps are exactly the first N of the chain,
    in order, with at most the last one unfinished (anything else was edited by hand)."""
    known = {s.id for s in STEPS}
    for entry in ledger.steps:
        if entry.id not in known:
            raise LedgerError(
                f"the ledger records step {entry.id} ({entry.name}), unknown to migrate"
                f" {__version__}; it was applied by migrate {entry.tool_version}",
                hint=f"install migrate {entry.tool_version} or newer",
            )
    ids = [e.id for e in ledger.steps]
    unfinished = [e.id for e in ledger.steps if e.state != "applied"]
    if ids != [s.id for s in STEPS[: len(ids)]] or unfinished not in ([], ids[-1:]):
        raise LedgerError(
            f"data/.migrate/ledger.json lists steps {ids} (unfinished: {unfinished or 'none'});"
            f" a ledger holds the first steps of {[s.id for s in STEPS]} in order",
            hint="the ledger was edited by hand: restore it from git (git checkout --"
            " data/.migrate)",
        )


# ---------------------------------------------------------------------------- results


@dataclass
class FileReport:
    path: str
    counts: Counter[str]
    changed: bool
    diff: str = ""


@dataclass
class StepReport:
    """What a step did. Per-file reports are kept only for dry runs (memory stays flat)."""

    step: Step
    direction: str
    files: list[FileReport] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    resumed: bool = False
    files_read: int = 0
    changed_files: int = 0


@dataclass
class RunReport:
    plan: Plan
    dry_run: bool
    steps: list[StepReport] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------- helpers


class DryRunRepo(DataRepo):
    """A read-only view of a repo with the files earlier steps *would* have written.

    Dry runs chain steps through it, so step 0002's plan reads what 0001 would produce,
    without a byte written to disk.
    """

    def __init__(self, base: DataRepo):  # noqa: D107 - no checks: base is already a repo
        self.root = base.root
        self.overlay: dict[str, bytes] = {}

    def read_bytes(self, rel: str) -> bytes:
        if rel in self.overlay:
            return self.overlay[rel]
        return super().read_bytes(rel)

    def checksum(self, rel: str) -> str:
        if rel in self.overlay:
            return sha256(self.overlay[rel])
        return super().checksum(rel)

    def write_atomic(self, rel: str, data: bytes, *, sync: bool = True) -> None:
        raise AssertionError(f"dry run tried to write {rel}")


def _stage_path(repo: DataRepo, rel: str):
    p = repo.path(rel)
    return p.with_name(f".{p.name}{STAGE_SUFFIX}")


def _spare_path(repo: DataRepo, rel: str):
    p = repo.path(rel)
    return p.with_name(f".{p.name}{SPARE_SUFFIX}")


#: Staged files at least this big are fsynced by the worker that wrote them, while the
#: other workers compute, and kept as spares; smaller ones are left to the one
#: ``os.sync()`` (an fsync per small file costs more than it overlaps) and not kept (a
#: spare saves page allocations, a few per small file, and costs a link and an unlink).
BIG = 1 << 20


def _open_spare(repo: DataRepo, rel: str, stage) -> Any:
    """The file a previous step of this run replaced (its *spare*, see ``_commit_stages``),
    renamed to ``stage`` and opened for rewriting in place, or None. Its pages are in the
    page cache and its blocks allocated: rewriting them costs a fraction of new ones.

    Only a regular file with no other name (a hard link elsewhere keeps its bytes) that no
    process has open (a write lease, which Linux grants only then; elsewhere nothing is
    rewritten), owned as a new file would be (so the result never depends on which path
    wrote it), is rewritten. A bind mount of the file is not seen (README, Guarantees)."""
    try:
        os.replace(_spare_path(repo, rel), stage)
    except OSError:
        return None  # none (the usual case), or not movable: a new file is written
    try:
        fh = os.fdopen(os.open(stage, os.O_RDWR | os.O_NOFOLLOW), "r+b")
    except OSError:
        stage.unlink(missing_ok=True)
        return None
    st = os.fstat(fh.fileno())
    if (
        st.st_nlink == 1
        and stat.S_ISREG(st.st_mode)
        and (st.st_uid, st.st_gid) == _new_owner(stage.parent)
        and _alone(fh.fileno())
    ):
        return fh
    fh.close()
    stage.unlink()  # drops this name only: the other names keep the bytes
    return None


def _alone(fd: int) -> bool:
    """No other open file description of this file, in any process: a write lease is
    granted only then. It is released at once (its only name is this run's staged name).
    Should another process open that name while the lease is held, the kernel starts
    breaking the lease, which the answer then reflects, and signals the holder: with
    SIGURG, ignored by default, instead of SIGIO, which would end the run."""
    if _SETLEASE is None:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, _SETLEASE, fcntl.F_WRLCK)
    except OSError:
        return False
    held = fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_WRLCK  # not being broken
    fcntl.fcntl(fd, _SETLEASE, fcntl.F_UNLCK)
    return held


def _new_owner(folder) -> tuple[int, int]:
    """The owner and group a file created in ``folder`` gets (Linux rules)."""
    st = os.stat(folder)
    return os.geteuid(), (st.st_gid if st.st_mode & stat.S_ISGID else os.getegid())


def _create(path) -> Any:
    """A new file, opened for writing (a stale one, from a run killed before its ledger
    entry, is removed first: its name may be shared, its bytes are never written into)."""
    try:
        return open(path, "xb")  # noqa: SIM115 - the caller closes it
    except FileExistsError:
        path.unlink()
        return open(path, "xb")  # noqa: SIM115


def _write_stage(repo: DataRepo, rel: str, stage, data: bytes, mode: int | None, reuse: bool):
    fh = _open_spare(repo, rel, stage) if reuse and len(data) >= BIG else None
    if fh is None:
        fh = _create(stage)
    if mode is not None:  # always: umask and default ACLs decide a new file's mode
        os.fchmod(fh.fileno(), mode)
    with fh:
        fh.write(data)
        fh.truncate()  # a spare may be longer than the new bytes
        if len(data) >= BIG:
            fh.flush()
            os.fsync(fh.fileno())


def _stage(repo: DataRepo, rel: str, data: bytes, offer: Iterable[str] = ()) -> None:
    """Write the new bytes beside the target, with the target's permission bits; made
    durable before the ledger marks the step ``applying`` (big files here, the rest by one
    ``os.sync()`` for all files). The bytes go into a new file (never into whatever a
    stale name points at), or over this run's spare of the file.

    ``offer``: the files whose spares this step may take. If the disk fills up, they are
    dropped (their space is what the run would have had without spares) and the file is
    written again, new."""
    stage = _stage_path(repo, rel)
    mode = file_mode(repo.path(rel))
    try:
        try:
            _write_stage(repo, rel, stage, data, mode, reuse=True)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _drop_spares(repo, offer):
                raise
            stage.unlink(missing_ok=True)
            _write_stage(repo, rel, stage, data, mode, reuse=False)
    except OSError as exc:
        raise RepoError(
            f"{rel}: cannot write its new version ({exc.strerror}); nothing was replaced",
            hint="free space or make the folder writable, then run the command again",
        ) from None


def _clean_stages(repo: DataRepo, stages: bool = True, keep: frozenset = frozenset()) -> None:
    """Remove a run's leftovers: spares and half-written temporary files (never needed),
    and staged files unless ``stages`` is False (an unfinished step needs them) or they
    are in ``keep``. A ledger folder left with nothing in it (a run killed writing the
    first ledger) goes too."""
    suffixes = (SPARE_SUFFIX, TMP_SUFFIX) + ((STAGE_SUFFIX,) if stages else ())
    ledger_dir = repo.path(LEDGER_DIR)
    for folder in {repo.path(rel).parent for rel in _all_targets(repo)} | {ledger_dir}:
        if folder.is_dir():
            for suffix in suffixes:
                for p in folder.glob(f".*{suffix}"):
                    if p not in keep:
                        p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # absent, or not empty
        ledger_dir.rmdir()


def _drop_spares(repo: DataRepo, rels: Iterable[str]) -> int:
    """Remove the spares of these files (those no step took); how many there were."""
    n = 0
    for rel in rels:
        try:
            _spare_path(repo, rel).unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def _keeps_spares(step: Step, later: tuple[Step, ...]) -> list[str] | None:
    """The list a step's commit adds its spares to, if the next step of the run rewrites
    the same files (same family); else None (no spares)."""
    return [] if later and later[0].family == step.family else None


def _all_targets(repo: DataRepo) -> list[str]:
    out: list[str] = []
    for s in STEPS:
        out.extend(s.files(repo))
    return out


def _commit_stages(
    repo: DataRepo,
    files: list[FileEntry],
    want: str,
    after_each: Callable[[int], None] | None,
    *,
    spares: list | None = None,
) -> None:
    """Rename staged files over their targets; ``want`` is "after" (up) or "before" (down).

    ``spares`` (a list): the next step of this run stages these files again, so each big
    replaced file is kept under a second name (a hard link made before the rename) for
    that step to rewrite in place (``_stage``); their names are added to the list. That
    step drops each spare it does not take as soon as it is done with the file."""
    folders = set()
    for i, fe in enumerate(files):
        target = repo.path(fe.path)
        stage = _stage_path(repo, fe.path)
        goal = getattr(fe, want)
        try:
            staged = os.stat(stage)
        except FileNotFoundError:
            staged = None
        if staged is not None:
            if spares is not None and staged.st_size >= BIG:
                spare = _spare_path(repo, fe.path)
                try:
                    spare.unlink(missing_ok=True)
                    if stat.S_ISREG(os.lstat(target).st_mode):  # (never a link's target)
                        os.link(target, spare, follow_symlinks=False)
                        spares.append(fe.path)
                except OSError:
                    pass  # no hard links here (or no file yet): the next step writes anew
            try:
                os.replace(stage, target)
            except OSError as exc:
                raise RepoError(
                    f"{fe.path}: cannot replace it ({exc.strerror}) after {i} of {len(files)}"
                    " files; the ledger marks the step unfinished",
                    hint="fix the cause, then `migrate up` finishes or `migrate down` undoes it",
                ) from None
            folders.add(target.parent)
        elif not target.exists() or file_sha256(target) != goal:
            raise DataChanged(
                f"{fe.path}: neither the file nor its staged copy has the expected content",
                hint="restore the file from git, then run the command again",
            )
        if after_each:
            after_each(i)
    for folder in folders:
        sync_dir(folder)
    os.sync()


def _diff(rel: str, old: bytes, new: bytes) -> str:
    return "".join(
        difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True),
            new.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"a/{rel}",
            tofile=f"b/{rel}",
        )
    )


# ---------------------------------------------------------------------------- up


def _load(repo: DataRepo, dry_run: bool) -> Ledger:
    """The ledger, with a step whose run was killed inside ``Ledger.begin`` (ledger.json
    written, detail file not yet) dropped: no data file had been replaced. A run that
    writes starts clean: a killed run's staged files go (unless its ledger entry needs
    them to finish), and so do its spares (never needed)."""
    ledger = Ledger.load(repo)
    check_ledger_known(ledger)
    half = ledger.unfinished
    if half is not None and half.state == "applying" and ledger.detail_missing(half):
        if not dry_run:
            ledger.drop(half)
        else:
            ledger.steps.remove(half)
    if not dry_run:
        if ledger.unfinished is None:
            _clean_stages(repo)
        else:
            _clean_stages(repo, stages=False)
    return ledger


def _up_step(
    repo: DataRepo,
    ledger: Ledger,
    step: Step,
    *,
    dry_run: bool,
    diff: bool,
    options: dict[str, Any],
    progress: Progress,
    after_each: Callable[[int], None] | None,
    jobs: int = 1,
    offered: list[str] | None = None,
    spares: list | None = None,
) -> StepReport:
    """``offered``: the files the previous step left spares of, for this step to rewrite in
    place or drop; ``spares``: keep each big replaced file for the next step, adding its
    name to this list (``_commit_stages``)."""
    report = StepReport(step, "up")
    try:
        ctx = step.prepare(repo, options)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(
            f"step {step.id} cannot read the data ({type(exc).__name__}: {exc})",
            [],
            hint="run `migrate check` to find the line",
        ) from None
    entries: list[FileEntry] = []
    lines: list[bytes | None] = []  # their ledger lines (None: encoded at begin)
    problems = []
    rels = step.files(repo)
    dry = isinstance(repo, DryRunRepo)
    offer = frozenset(offered or ())

    def one(rel: str) -> FileOutcome:
        out = _up_file(step, ctx, repo, rel, stage=not dry, diff=diff, offer=offer)
        if rel in offer:  # its spare, unless taken: its space is free as soon as possible
            _drop_spares(repo, (rel,))
        return out

    outcomes = map_files(one, rels, 1 if dry else jobs, progress)  # dry: one process
    try:
        for out in outcomes:
            report.files_read += 1
            report.totals.update(out.counts)
            report.notes.extend(out.notes)
            if out.problems:
                problems.extend(out.problems)
                continue
            changed = out.entry is not None and out.entry.before != out.entry.after
            if dry:
                report.files.append(FileReport(out.rel, out.counts, changed, out.diff))
            if out.entry is None:
                continue
            report.changed_files += changed
            if out.verbatim:
                report.totals["files kept verbatim for down"] += 1
            entries.append(out.entry)
            lines.append(out.line)
            if dry and changed:
                repo.overlay[out.rel] = out.data
    except MigrateError:
        if not dry:
            _clean_stages(repo)  # e.g. a full disk: leave no staged copies behind
        raise
    if problems:
        _clean_stages(repo)
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            [str(p) for p in problems],
            hint="fix or remove these lines (see `migrate check`), then run again",
        )
    report.notes.extend(step.summary(ctx, report.totals))
    if dry_run:
        return report
    entry = StepEntry(
        step.id,
        step.name,
        step.description,
        "applying",
        clock.now_iso(),
        __version__,
        _summary(report, {k: v for k, v in options.items() if v and k != "jobs" and k[0] != "_"}),
    )
    os.sync()  # every staged file is durable before the ledger says "applying"
    try:
        ledger.begin(entry, entries, lines)
    except MigrateError as exc:  # e.g. a full disk: no data file was replaced yet
        _clean_stages(repo)  # the space the staged files hold is given back at once
        if entry in ledger.steps:
            with contextlib.suppress(MigrateError):
                ledger.drop(entry)  # else the next run drops it (its detail file is missing)
        raise RepoError(
            f"{exc}; nothing was replaced", hint="free space, then run the command again"
        ) from None
    _commit_stages(repo, entries, "after", after_each, spares=spares)
    ledger.mark(entry, "applied")
    return report


@dataclass
class FileOutcome:
    rel: str
    entry: FileEntry | None  # None: unchanged
    counts: Counter[str]
    notes: list[str]
    problems: list[Problem]
    diff: str = ""
    data: bytes | None = None  # the new bytes, kept only for dry runs
    line: bytes | None = None  # the entry's ledger line (staged files: the entry is light)
    verbatim: bool = False  # down cannot rebuild the bytes: the ledger keeps them


def _up_file(
    step: Step,
    ctx: Any,
    repo: DataRepo,
    rel: str,
    *,
    stage: bool,
    diff: bool,
    offer: frozenset[str] = frozenset(),
) -> FileOutcome:
    """One file through a step: new bytes, round-trip verification, staging. ``offer``:
    the spares this step may take (``_stage``)."""
    data = repo.read_bytes(rel)
    try:
        res = step.up(rel, data, ctx)
    except (KeyError, TypeError, ValueError) as exc:
        why = f"step {step.id} cannot process this file ({type(exc).__name__}: {exc})"
        return FileOutcome(rel, None, Counter(), [], [Problem(rel, 0, why)])
    out = FileOutcome(rel, None, res.counts, res.notes, res.problems)
    if res.problems:
        return out
    if res.data == data:
        if step.records_unchanged:
            digest = sha256(data)
            out.entry = FileEntry(rel, digest, digest)
        return out
    restore = None
    exact = res.exact if res.exact is not None else step.down(rel, res.data, res.patch) == data
    if not exact:
        restore = data  # down cannot rebuild these exact bytes: keep them in the ledger
    out.entry = FileEntry(rel, sha256(data), sha256(res.data), restore, res.patch)
    out.verbatim = restore is not None
    if stage:
        _stage(repo, rel, res.data, offer)
        # the ledger line is encoded here, in the worker: what crosses back to the main
        # process is bytes, and the entry without its patch (the line holds it)
        out.line = out.entry.to_line()
        out.entry = FileEntry(rel, out.entry.before, out.entry.after)
    else:
        out.data = res.data
    if diff:
        out.diff = _diff(rel, data, res.data)
    return out


def _summary(report: StepReport, options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "files_changed": report.changed_files,
        "files_read": report.files_read,
        **{k: v for k, v in sorted(report.totals.items())},
    }
    if options:
        out["options"] = options  # e.g. the --evidence folders, for the record
    return out


def _resume_up(
    repo: DataRepo, ledger: Ledger, entry: StepEntry, after_each: Callable[[int], None] | None
) -> StepReport:
    step = by_id(entry.id)
    files = ledger.files(entry)
    pending = [fe for fe in files if repo.checksum(fe.path) != fe.after]
    _commit_stages(repo, pending, "after", after_each)
    ledger.mark(entry, "applied")
    report = StepReport(step, "up", resumed=True)
    report.notes.append(f"finished an interrupted run: {len(pending)} of {len(files)} files left")
    return report


def up(
    repo: DataRepo,
    target: str | None = "head",
    *,
    dry_run: bool = False,
    diff: bool = False,
    options: dict[str, Any] | None = None,
    progress: Progress = None,
    after_each: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> RunReport:
    """Apply steps up to ``target``. ``after_each(i)`` is a test hook run after each rename;
    ``jobs`` > 1 spreads each step's files over that many processes."""
    start = clock.monotonic()
    options = {**(options or {}), "jobs": jobs}
    for key in ("recipes",):  # checked before anything runs, not when step 0003 needs it
        if options.get(key) and not os.path.isdir(options[key]):
            raise UsageError(f"{options[key]}: not a directory (--{key} takes a folder)")
    with hold(repo, "up", dry_run=dry_run), long_lived():
        ledger = _load(repo, dry_run)
        resumed = None
        unfinished = ledger.unfinished
        if unfinished is not None:
            if unfinished.state == "reverting":
                raise LedgerError(
                    f"step {unfinished.id} was being reverted when a run stopped",
                    hint="run `migrate down` to finish reverting it first",
                )
            if dry_run:
                return RunReport(
                    Plan("up", (by_id(unfinished.id),), ledger.current, unfinished.id),
                    True,
                    [],
                    0.0,
                )
            resumed = _resume_up(repo, ledger, unfinished, after_each)
        try:
            run = _up_planned(
                repo,
                ledger,
                target,
                resumed,
                dry_run=dry_run,
                diff=diff,
                options=options,
                progress=progress,
                after_each=after_each,
                jobs=jobs,
            )
        except MigrateError as exc:
            if resumed is not None:  # what the message says was not done is not all
                exc.args = (
                    f"{exc} (before that, the interrupted step {resumed.step.id} was finished)",
                )
            raise
        run.seconds = clock.monotonic() - start
        return run


def _up_planned(
    repo: DataRepo,
    ledger: Ledger,
    target: str | None,
    resumed: StepReport | None,
    *,
    dry_run: bool,
    diff: bool,
    options: dict[str, Any],
    progress: Progress,
    after_each: Callable[[int], None] | None,
    jobs: int,
) -> RunReport:
    """``up`` once the ledger has no unfinished step: plan, preflight, then each step."""
    the_plan = plan(ledger, "up", target)
    problems = list(dict.fromkeys(str(p) for s in the_plan.steps for p in s.preflight(repo)))
    if problems:
        raise BadInputError(
            f"{len(problems)} problem(s) in the data; nothing was written",
            problems,
            hint="fix or remove these lines (see `migrate check`), then run again",
        )
    run = RunReport(the_plan, dry_run)
    if resumed:
        run.steps.append(resumed)
    view = DryRunRepo(repo) if dry_run else repo
    offered: list[str] = []  # spares the last step left for the next (_commit_stages)
    made: list[str] | None = None
    try:
        for i, step in enumerate(the_plan.steps):
            later = the_plan.steps[i + 1 :]
            made = _keeps_spares(step, later)
            report = _up_step(
                view,
                ledger,
                step,
                dry_run=dry_run,
                diff=diff,
                options=options,
                progress=progress,
                after_each=after_each,
                jobs=jobs,
                offered=offered,
                spares=made,
            )
            offered, made = made or [], None
            run.steps.append(report)
    finally:
        _drop_spares(repo, offered + (made or []))
    return run


# ---------------------------------------------------------------------------- down


def _down_step(
    repo: DataRepo,
    ledger: Ledger,
    entry: StepEntry,
    *,
    dry_run: bool,
    force: bool,
    after_each: Callable[[int], None] | None,
    jobs: int = 1,
    offered: list[str] | None = None,
    spares: list | None = None,
) -> StepReport:
    """``offered`` and ``spares`` as for ``_up_step``."""
    step = by_id(entry.id)
    report = StepReport(step, "down")
    files = ledger.files(entry)
    by_path = {fe.path: fe for fe in files}
    rels = [fe.path for fe in files] + [r for r in step.files(repo) if r not in by_path]
    dry = isinstance(repo, DryRunRepo)
    interrupted = entry.state != "applied"
    offer = frozenset(offered or ())

    def clean() -> None:
        """This step's staged files go; those of the interrupted ``up`` being undone stay
        (told by their checksum): if this ``down`` fails, ``up`` can still finish."""
        keep = set()
        if entry.state == "applying":
            for fe in files:
                stage = _stage_path(repo, fe.path)
                if stage.exists() and file_sha256(stage) == fe.after:
                    keep.add(stage)
        _clean_stages(repo, keep=frozenset(keep))

    def one(rel: str) -> tuple[str, Any, bytes | None]:
        out = _down_file(
            step,
            entry,
            by_path.get(rel),
            repo,
            rel,
            force=force,
            interrupted=interrupted,
            stage=not dry,
            offer=offer,
        )
        if rel in offer:
            _drop_spares(repo, (rel,))
        return out

    todo: list[FileEntry] = []
    changed: list[str] = []
    errors: list[str] = []
    try:
        for kind, value, old in map_files(one, rels, 1 if dry else jobs):
            if kind == "changed":
                changed.append(value)
            elif kind == "error":
                errors.append(value)
            elif kind == "note":
                report.notes.append(value)
            elif kind in ("revert", "unrecorded"):
                report.changed_files += 1
                todo.append(value)
                if kind == "unrecorded":
                    report.notes.append(
                        f"{value.path}: not written by {step.id}, converted down as well"
                    )
                if dry:
                    repo.overlay[value.path] = old
    except MigrateError:
        if not dry:
            clean()  # e.g. a full disk: leave no staged copies behind
        raise
    if changed or errors:
        if not dry:
            clean()
        if changed:
            raise DataChanged(
                f"{len(changed)} file(s) changed since step {entry.id} wrote them: "
                + ", ".join(changed[:5])
                + (" ..." if len(changed) > 5 else ""),
                hint="`migrate verify` lists them; commit or revert those edits"
                " (or pass --force to convert them down as they are now, edits included)",
            )
        raise DataChanged(errors[0], hint="restore the file from git, then run again")
    report.files_read = len(rels)
    if dry_run:
        return report
    os.sync()
    if entry.state != "reverting":
        was = entry.state
        try:
            ledger.mark(entry, "reverting")
        except MigrateError as exc:  # e.g. a full disk: no file was replaced yet
            entry.state = was
            clean()
            raise RepoError(
                f"{exc}; nothing was reverted", hint="free space, then run the command again"
            ) from None
    _commit_stages(repo, todo, "before", after_each, spares=spares)
    ledger.drop(entry)
    return report


def _down_file(
    step: Step,
    entry: StepEntry,
    fe: FileEntry | None,
    repo: DataRepo,
    rel: str,
    *,
    force: bool,
    interrupted: bool,
    stage: bool,
    offer: frozenset[str] = frozenset(),
) -> tuple[str, Any, bytes | None]:
    """One file back through a step: ("skip"|"changed"|"error"|"note"|"revert"|"unrecorded",
    value, old bytes for a dry run)."""
    if fe is not None and fe.before == fe.after:  # recorded as left unchanged by up
        if not repo.exists(rel):
            return ("note", f"{rel}: deleted since step {entry.id}; left deleted", None)
        if repo.checksum(rel) == fe.before:
            return ("skip", None, None)
        fe = None  # changed since (e.g. `migrate ingest`): like a file added later
    if fe is None:  # a file the step never wrote (e.g. added by `migrate ingest` since)
        cur = repo.read_bytes(rel)
        try:
            old = step.down_unrecorded(rel, cur)
        except (KeyError, TypeError, ValueError) as exc:
            return (
                "error",
                f"{rel}: written after step {entry.id} and not convertible down"
                f" ({type(exc).__name__}: {exc})",
                None,
            )
        if old is None or old == cur:
            return ("skip", None, None)
        new = FileEntry(rel, sha256(old), sha256(cur))
    else:
        if not repo.exists(rel):
            if force and fe.restore is None:
                return ("note", f"{rel}: deleted since step {entry.id}; left deleted", None)
            if not force:
                return ("changed", rel, None)
            cur = b""
        else:
            cur = repo.read_bytes(rel)
        digest = sha256(cur)
        if digest == fe.before:
            return ("skip", None, None)  # never replaced (interrupted up) or already reverted
        if digest != fe.after and not force:
            return ("changed", rel, None)
        try:
            old = fe.restore if fe.restore is not None else step.down(rel, cur, fe.patch)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            return (
                "error",
                f"{rel}: cannot revert step {entry.id} on this file as it is now"
                f" ({type(exc).__name__}: {exc})",
                None,
            )
        if fe.restore is None and sha256(old) != fe.before and not force:
            return ("error", f"{rel}: reverting does not give back the recorded bytes", None)
        new = fe
    if stage:
        _stage(repo, rel, old, offer)
        return ("revert" if fe else "unrecorded", new, None)
    return ("revert" if fe else "unrecorded", new, old)


def down(
    repo: DataRepo,
    target: str | None = None,
    *,
    dry_run: bool = False,
    force: bool = False,
    after_each: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> RunReport:
    """Revert steps down to ``target`` (default: the last applied step only)."""
    start = clock.monotonic()
    with hold(repo, "down", dry_run=dry_run), long_lived():
        ledger = _load(repo, dry_run)
        reports = []
        unfinished = ledger.unfinished
        if unfinished is not None:
            # an interrupted up or down: undo it first, it is not "applied"
            if dry_run:
                return RunReport(
                    Plan("down", (by_id(unfinished.id),), ledger.current, ledger.current), True, []
                )
            reports.append(
                _down_step(
                    repo, ledger, unfinished, dry_run=False, force=force, after_each=after_each
                )
            )
            reports[-1].resumed = True
            _clean_stages(repo)
            if target is None:
                return RunReport(
                    Plan("down", (by_id(unfinished.id),), ledger.current, ledger.current),
                    False,
                    reports,
                    clock.monotonic() - start,
                )
        the_plan = plan(ledger, "down", target)
        run = RunReport(the_plan, dry_run, reports)
        view = DryRunRepo(repo) if dry_run else repo
        offered: list[str] = []  # as in up
        made: list[str] | None = None
        try:
            for i, step in enumerate(the_plan.steps):
                entry = next(e for e in ledger.steps if e.id == step.id)
                later = the_plan.steps[i + 1 :]
                made = _keeps_spares(step, later)
                run.steps.append(
                    _down_step(
                        view,
                        ledger,
                        entry,
                        dry_run=dry_run,
                        force=force,
                        after_each=after_each,
                        jobs=jobs,
                        offered=offered,
                        spares=made,
                    )
                )
                offered, made = made or [], None
        finally:
            _drop_spares(repo, offered + (made or []))
        run.seconds = clock.monotonic() - start
        return run


# ---------------------------------------------------------------------------- queries


def status(repo: DataRepo) -> dict[str, Any]:
    ledger = Ledger.load(repo)
    check_ledger_known(ledger)
    pending = [s.id for s in plan(ledger, "up", "head").steps]
    out: dict[str, Any] = {"current": ledger.current, "head": STEPS[-1].id, "pending": pending}
    if ledger.unfinished is not None:
        out["unfinished"] = {"id": ledger.unfinished.id, "state": ledger.unfinished.state}
    return out


def history(repo: DataRepo) -> list[StepEntry]:
    return Ledger.load(repo).steps


def verify(repo: DataRepo) -> list[tuple[str, str]]:
    """Files whose bytes differ from what the last step that wrote them recorded."""
    ledger = Ledger.load(repo)
    latest: dict[str, tuple[str, str]] = {}
    for entry in ledger.steps:
        for fe in ledger.files(entry):
            if fe.before != fe.after:  # (files a step only recorded are not its writing)
                latest[fe.path] = (entry.id, fe.after)
    out = []
    for path, (step_id, after) in sorted(latest.items()):
        if not repo.exists(path):
            out.append((path, f"missing (written by step {step_id})"))
            continue
        if repo.checksum(path) != after:
            out.append((path, f"changed since step {step_id} wrote it"))
    return out
