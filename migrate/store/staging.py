"""Replacing files so that a run killed at any instant can be finished.

For every run (``up`` or ``down``), once every file's new version has been computed and
checked:

1. the new versions go into one archive, ``data/.migrate/staged.bin`` (one sequential
   write, made durable: far cheaper than one new file beside each of thousands of files,
   which on this project's disks costs twice the rewrite itself);
2. the run's ledger file is written, complete and durable, as pending
   (:meth:`migrate.store.ledger.Ledger.write_pending`);
3. each file is replaced from the archive, written in place (truncated, then written):
   the archive is the redo log, and a file a kill left holding a prefix of its staged
   version is the run's own, written again by the run that finishes it;
4. the run is marked finished and the archive removed.

Killed before 2, a run has replaced nothing; the next run removes what it left. Killed
after 2, it leaves a pending run and a complete archive: the next run that writes
finishes it (:func:`settle`), whichever command it is.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

from migrate import codec
from migrate.errors import DataChanged, RepoError, Unfinished
from migrate.layout import ARCHIVE, LEDGER_DIR, RUNS_DIR, TMP_DIR
from migrate.progress import Phase, phase
from migrate.store import sync_dir
from migrate.store.ledger import Ledger, checksum

#: (path, checksum its new bytes must have, its :func:`stamp` when the run read it or
#: None: compare its bytes with the archive's). Written in place, a file keeps its
#: permission bits: there are none to carry.
Move = tuple[str, str, int | None]
#: what migrate 0.3 left beside files while it replaced them (cleaned like its own)
OLD_TMP_SUFFIXES = (".migrate-tmp", ".migrate-stage")


def stamp(path: str) -> int | None:
    """What says a file is still the one a run read, without reading it again: a hash of
    its inode, size and modification time (None: no such file). Taken before the read, so
    a save that lands between the two shows as a change."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return hash((st.st_ino, st.st_size, st.st_mtime_ns))


_FOOTER = struct.Struct("<Q")
#: where migrate 0.3 left its temporary files
_OLD_FOLDERS = ("data/failures", "data/queues", "data", LEDGER_DIR, RUNS_DIR)


class Staging:
    """A run's new file versions, collected into :data:`ARCHIVE` as they are computed: the
    bytes of each, one after the other, then an index (JSON: path -> offset, length, the
    checksum of the bytes the version replaces) and the index's offset. Written once,
    sequentially, and read back with ``pread``."""

    def __init__(self, store):
        self.store = store
        self.path = store.path(ARCHIVE)
        self.tmp = Path(store.tmp_for(ARCHIVE))
        self.index: dict[str, tuple[int, int, str]] = {}
        self.offset = 0
        try:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(self.tmp, "wb")  # noqa: SIM115 - closed by close() or abandon()
        except OSError as exc:
            raise _cannot_write(ARCHIVE, exc) from None

    def add(self, rel: str, data: bytes, replaces: str) -> None:
        """``data``: the new version of ``rel``; ``replaces``: the checksum of the bytes
        the run read (a run finished after a kill replaces only those)."""
        try:
            self.fh.write(data)
        except OSError as exc:
            raise _cannot_write(ARCHIVE, exc) from None
        self.index[rel] = (self.offset, len(data), replaces)
        self.offset += len(data)

    def close(self) -> None:
        """Complete and durable, under its name (before the ledger names the run)."""
        try:
            self.fh.write(codec.dumps_bytes(self.index))
            self.index = {}  # (the commit reads it back from the archive: one copy at a time)
            self.fh.write(_FOOTER.pack(self.offset))
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.store.own_folder()  # (its .gitignore first: git never commits the archive)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise _cannot_write(ARCHIVE, exc) from None
        sync_dir(self.path.parent)

    def abandon(self) -> None:
        with contextlib.suppress(Exception):  # (a full disk fails the close as well)
            self.fh.close()
        self.tmp.unlink(missing_ok=True)


class _Archive:
    """:data:`ARCHIVE`, open for reading."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY)
        size = os.fstat(self.fd).st_size
        (start,) = _FOOTER.unpack(os.pread(self.fd, _FOOTER.size, size - _FOOTER.size))
        raw = os.pread(self.fd, size - _FOOTER.size - start, start)
        #: path -> [offset, length, checksum of the bytes it replaces]
        self.index: dict[str, list] = codec.loads_trusted(raw)

    def read(self, rel: str) -> bytes:
        offset, length = self.index[rel][:2]
        return os.pread(self.fd, length, offset)

    def replaces(self, rel: str, now: str | None) -> bool:
        """Whether ``rel``'s staged version is to replace the bytes ``now`` (checksum;
        None: no file): staged, for the bytes the run read (an archive of migrate 0.3.0
        before this rule does not say: yes)."""
        at = self.index.get(rel)
        return at is not None and (len(at) < 3 or at[2] == now)

    def close(self) -> None:
        os.close(self.fd)


def _cannot_write(rel: str, exc: OSError) -> RepoError:
    return RepoError(
        f"{rel}: cannot write ({exc.strerror}); nothing was replaced",
        hint="free space or make the folder writable, then run the command again",
    )


def commit(
    store,
    moves: list[Move],
    after_each: Callable[[int], None] | None = None,
    resume: bool = False,
    progress: Phase | None = None,
) -> list[str]:
    """Replace each file by its version in the archive, in one process (two processes
    replacing 56,778 files were slower than one: docs/PERFORMANCE.md). A file is replaced
    only while it holds the bytes the run read: one another writer saved or deleted since
    (during the run: by its :func:`stamp`; after a kill: by its bytes against the
    archive's) is left as it is, and returned (nothing of theirs is overwritten).
    ``resume``: a file that already has its new bytes (replaced before a run was killed)
    is left as it is; one holding a prefix of them is written again."""
    if not moves:
        return []
    archive = _Archive(store.fspath(ARCHIVE))

    def replaced():
        for i, (rel, after, seen) in enumerate(moves):
            target = store.fspath(rel)
            data = archive.read(rel)
            if resume:  # (after a kill: by content, against the archive's record)
                now = store.read_or_none(rel)
                if now is not None and checksum(now) == after:
                    continue  # (written before the kill)
                if not _ours_to_finish(archive, rel, now, data):
                    theirs.append(rel)  # saved or deleted by another writer since the
                    continue  # run read it (or never staged): theirs
                if checksum(data) != after:
                    raise DataChanged(
                        f"{ARCHIVE}: the staged version of {rel} is not the one the ledger names",
                        hint="restore data/ from git (git checkout -- data), then run again",
                    )
            elif stamp(target) != seen:  # saved or deleted by another writer meanwhile
                theirs.append(rel)
                continue
            _write_in_place(target, rel, data, i, len(moves))
            if after_each:
                after_each(i)
            yield os.path.dirname(target)

    theirs: list[str] = []
    shown = phase(progress, "replace the files", len(moves))
    try:
        folders = set(shown(replaced()) if shown else replaced())
    finally:
        archive.close()
    for folder in folders:
        sync_dir(Path(folder))
    os.sync()
    return theirs


def _ours_to_finish(archive: _Archive, rel: str, now: bytes | None, data: bytes) -> bool:
    """After a kill: whether a file now holding ``now`` (None: absent) is the run's to
    write. It is when it still holds the bytes the run read, or a prefix of its staged
    version ``data`` (a write the kill cut short: truncated, part written). Anything else
    was saved or deleted by another writer. (No writer of tsuku's data saves a file as a
    byte prefix of migrate's version of it: failure files are never rewritten, and a queue
    save is a whole JSON document.)"""
    if archive.replaces(rel, None if now is None else checksum(now)):
        return True
    return now is not None and len(now) < len(data) and data.startswith(now)


def _write_in_place(target: str, rel: str, data: bytes, i: int, total: int) -> None:
    """Write ``data`` over ``target`` in place (truncated, then written: the file keeps its
    inode and permission bits; an absent one is created as any new file). The staging archive
    is the redo log: a kill mid-write leaves a prefix of ``data``, which the next run
    recognises as its own (:func:`_ours_to_finish`) and writes again. Written in place,
    14,000 files took 3.1-3.3 s here, against 4.0-6.2 s through a temporary file renamed
    beside each and 10.7-14.7 s through one in migrate's folder (docs/PERFORMANCE.md)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise RepoError(
            f"{rel}: cannot replace it ({exc.strerror}) after {i} of {total} files;"
            " the run is recorded as unfinished",
            hint="fix the cause, then any `migrate` run that writes finishes it",
        ) from None


def begin(store, ledger: Ledger, dry_run: bool) -> str | None:
    """What every writing run does first: finish a pending run, remove what a killed one
    left. Returns what was finished, for the report."""
    run = ledger.pending
    if dry_run and run is not None:  # (it would show a plan from half-replaced files)
        target = run.to or "base"
        raise Unfinished(
            f"run {run.id} ({run.kind} to {target}) was interrupted; the next run that"
            " writes finishes it first, then plans from there: a dry run cannot show that",
            hint=f"finish it (`migrate {run.kind} --to {target}`), then run the dry run again",
        )
    if dry_run:
        return None
    settled = settle(store, ledger) if run is not None else None
    clean(store)
    return settled


def clean(store) -> None:
    """Remove what a run that wrote nothing left: temporary files, a staging archive no
    pending run names (and the temporary files migrate 0.3 left beside files)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(store.fspath(TMP_DIR)):
            with contextlib.suppress(OSError):
                os.unlink(store.fspath(f"{TMP_DIR}/{name}"))
    for folder in _OLD_FOLDERS:
        try:  # (one listing per folder: 57,000 names, listed once per suffix, took 0.07 s)
            names = os.listdir(store.fspath(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if name.startswith(".") and name.endswith(OLD_TMP_SUFFIXES):
                store.path(f"{folder}/{name}").unlink(missing_ok=True)
    store.path(ARCHIVE).unlink(missing_ok=True)


def settle(store, ledger: Ledger) -> str | None:
    """Finish the run a killed process left pending, if any (from its staging archive:
    each file still holding the bytes the run read gets its staged version); what was
    done, for the report."""
    run = ledger.pending
    if run is None:
        return None
    theirs: list[str] = []
    n = 0
    if not store.exists(ARCHIVE):
        staged = any(c.get("files_changed") for c in run.counts.values() if isinstance(c, dict))
        if staged:  # (a run that replaced files staged them: their copies are gone)
            raise DataChanged(
                f"run {run.id} ({run.kind} to {run.to or 'base'}) was interrupted and"
                f" {ARCHIVE}, which it needs to be finished, is gone",
                hint="restore data/ from git (git checkout -- data), then run again",
            )
    else:
        archive = _Archive(store.fspath(ARCHIVE))
        try:
            moves = [(rel, checksum(archive.read(rel)), None) for rel in archive.index]
        finally:
            archive.close()
        n = len(moves)
        theirs = commit(store, moves, resume=True)
    if theirs and run.kind == "down":  # (what a down would do with them now: their values
        from migrate.engine.backward import revert_rewritten  # kept, migrate's taken out)

        revert_rewritten(store, ledger, run.steps, theirs)
    if run.kind == "down" and run.to is None:
        ledger.remove_all()
    else:
        ledger.finish(run)
        store.path(ARCHIVE).unlink(missing_ok=True)
    done = f"finished the interrupted {run.kind} run {run.id} ({n} files)"
    if theirs:
        done += (
            f"; {len(theirs)} file(s) saved or deleted by another writer since it was"
            f" interrupted, kept as they left them: {', '.join(theirs[:5])}"
            + (" ..." if len(theirs) > 5 else "")
        )
    return done
