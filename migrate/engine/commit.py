"""Replacing files so that a run killed at any instant can be finished.

For every run (``up`` or ``down``):

1. each new version is *staged* beside its file (``.NAME.migrate-stage``, the file's
   permission bits), then all are made durable with one ``os.sync()``;
2. the run's ledger file is written, complete and durable, as pending
   (:meth:`migrate.ledger.Ledger.write_pending`);
3. each staged file is renamed over its file (atomic per file), then synced;
4. the run is marked finished (:meth:`migrate.ledger.Ledger.finish`).

Killed before 2, a run leaves only staged files, which the next run removes. Killed
after 2, it leaves a pending run whose every file is either replaced or staged: the next
run finishes it (:func:`settle`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from migrate.errors import DataChanged, RepoError
from migrate.ledger import Ledger, checksum
from migrate.repo import LEDGER_DIR, TMP_SUFFIX, DataRepo, file_mode, sync_dir

STAGE_SUFFIX = ".migrate-stage"
#: (path, checksum its new bytes must have)
Move = tuple[str, str]


def stage_path(repo: DataRepo, rel: str) -> Path:
    p = repo.path(rel)
    return p.with_name(f".{p.name}{STAGE_SUFFIX}")


def stage(repo: DataRepo, rel: str, data: bytes) -> None:
    """Write a file's new version beside it, with its permission bits (made durable by the
    run's one ``os.sync()`` before the ledger names it). Always a new file: a stale staged
    file of a killed run is removed first, never written into."""
    path = stage_path(repo, rel)
    mode = file_mode(repo.path(rel))
    try:
        path.unlink(missing_ok=True)
        with open(path, "xb") as fh:
            if mode is not None:  # (umask and default ACLs decide a new file's mode)
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise RepoError(
            f"{rel}: cannot write its new version ({exc.strerror}); nothing was replaced",
            hint="free space or make the folder writable, then run the command again",
        ) from None


def commit(
    repo: DataRepo, moves: list[Move], after_each: Callable[[int], None] | None = None
) -> None:
    """Rename each staged file over its file. A file that already has its new bytes (an
    earlier, interrupted attempt renamed it) is left as it is."""
    folders = set()
    for i, (rel, after) in enumerate(moves):
        target, staged = repo.path(rel), stage_path(repo, rel)
        if staged.exists():
            try:
                os.replace(staged, target)
            except OSError as exc:
                raise RepoError(
                    f"{rel}: cannot replace it ({exc.strerror}) after {i} of {len(moves)}"
                    " files; the run is recorded as unfinished",
                    hint="fix the cause, then any `migrate` run that writes finishes it",
                ) from None
            folders.add(target.parent)
        elif _checksum(target) != after:
            raise DataChanged(
                f"{rel}: neither the file nor its staged copy has the expected content",
                hint="restore the file from git, then run the command again",
            )
        if after_each:
            after_each(i)
    for folder in folders:
        sync_dir(folder)
    os.sync()


def sync_all() -> None:
    """Make every staged file durable (one call for all of them: an fsync per small file
    costs more than the run's whole compute)."""
    os.sync()


def ready(repo: DataRepo, moves: list[Move]) -> bool:
    """Whether a pending run can be finished: every file has its new bytes, or a staged
    copy that has them."""
    for rel, after in moves:
        staged = stage_path(repo, rel)
        if staged.exists():
            if _checksum(staged) != after:
                return False
        elif _checksum(repo.path(rel)) != after:
            return False
    return True


def clean(repo: DataRepo, folders: Iterable[str], keep_staged: bool = False) -> None:
    """Remove a run's leftovers: half-written temporary files and, unless ``keep_staged``
    (a pending run needs them), staged files. A ledger folder left empty goes too."""
    suffixes = (TMP_SUFFIX,) if keep_staged else (TMP_SUFFIX, STAGE_SUFFIX)
    for folder in {*folders, LEDGER_DIR, f"{LEDGER_DIR}/runs"}:
        path = repo.path(folder)
        if path.is_dir():
            for suffix in suffixes:
                for p in path.glob(f".*{suffix}"):
                    p.unlink(missing_ok=True)
    for folder in (f"{LEDGER_DIR}/runs", LEDGER_DIR):
        with contextlib.suppress(OSError):  # absent, or not empty
            repo.path(folder).rmdir()


def _checksum(path: Path) -> str | None:
    try:
        return checksum(path.read_bytes())
    except FileNotFoundError:
        return None


def settle(repo: DataRepo, ledger: Ledger) -> str | None:
    """Finish the run a killed process left pending, if any; what was done, for the report.
    A pending run whose staged files are gone (cleaned by hand) cannot be finished: refused
    with the way out."""
    run = ledger.pending
    if run is None:
        return None
    moves = [(fs.path, fs.after) for fs in ledger.files(run)]
    if not ready(repo, moves):
        raise DataChanged(
            f"run {run.id} ({run.kind} to {run.to or 'base'}) was interrupted and its staged"
            " files are gone or changed, so it cannot be finished",
            hint="restore data/ from git (git checkout -- data), then run again",
        )
    commit(repo, moves)
    if run.kind == "down" and run.to is None:
        ledger.remove_all()
    else:
        ledger.finish(run)
    return f"finished the interrupted {run.kind} run {run.id} ({len(moves)} files)"
