"""The store: the one object that touches a data repo's files (yoyo's lesson).

It finds the files the steps own, reads them safely, and owns everything migrate keeps
in the repo: the ledger (:mod:`.ledger`), the cache of what steps gather from each file
(:mod:`.cache`), the staging archive and the write protocol (:mod:`.staging`), and the
lock (:mod:`.lock`). Steps, the engine's pure core and the commands never open a repo
file themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from pathlib import Path

from migrate.errors import RepoError
from migrate.layout import (
    BATCH_RESULTS,
    CACHE_DIR,
    FAILURES_DIR,
    IGNORE_FILE,
    IGNORED,
    LEDGER_DIR,
    QUEUE_GLOBS,
    QUEUES_DIR,
    TMP_DIR,
    FailureFile,
)


def file_mode(path: str | Path) -> int | None:
    """A file's permission bits, which a rewrite keeps; None if there is no file yet."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None  # absent (or unreadable: the write or replace will say so)


def sync_dir(folder: str | Path) -> None:
    """fsync a directory so a rename in it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Store:
    """A checkout holding ``data/failures`` and/or ``data/queues`` (a tsuku data repo)."""

    def __init__(self, root: str | os.PathLike[str]):
        root_path = Path(root)
        if not root_path.exists():
            raise RepoError(f"{root}: no such directory")
        if not root_path.is_dir():
            raise RepoError(f"{root}: not a directory")
        self.root = root_path.resolve()
        self._root = str(self.root)
        self._listed: tuple[int, list[str]] | None = None
        if not (self.root / FAILURES_DIR).is_dir() and not (self.root / QUEUES_DIR).is_dir():
            raise RepoError(
                f"{root}: not a tsuku data repo (no data/failures/ or data/queues/ folder)",
                hint="run inside a checkout of tsuku's data, or pass --repo DIR",
            )

    # ------------------------------------------------------------------ discovery

    def path(self, rel: str) -> Path:
        return self.root / rel

    def fspath(self, rel: str) -> str:
        """:meth:`path` as a string (cheaper, for what is done once per file)."""
        return os.path.join(self._root, rel)

    def failure_rels(self) -> list[str]:
        """Every ``data/failures/*.jsonl``, sorted by name (directories too, to be
        reported). Listed again only when the folder changed (a run asks several times)."""
        folder = self.fspath(FAILURES_DIR)
        try:
            mtime = os.stat(folder).st_mtime_ns
            if self._listed is not None and self._listed[0] == mtime:
                return list(self._listed[1])
            names = sorted(n for n in os.listdir(folder) if n.endswith(".jsonl"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        rels = [f"{FAILURES_DIR}/{n}" for n in names]
        self._listed = (mtime, rels)
        return list(rels)

    def failure_files(self) -> list[FailureFile]:
        """:meth:`failure_rels` with what each name says."""
        return [FailureFile.from_rel(rel) for rel in self.failure_rels()]

    def queue_files(self) -> list[str]:
        """Every queue-like JSON file (priority queues and ``batch-results.json``)."""
        out: list[str] = []
        for pattern in QUEUE_GLOBS:
            out.extend(p.relative_to(self.root).as_posix() for p in sorted(self.root.glob(pattern)))
        return out

    def queue_rels(self) -> list[str]:
        """The priority queues (``batch-results.json`` is not a queue)."""
        return [rel for rel in self.queue_files() if not rel.endswith("/" + BATCH_RESULTS)]

    def kind(self, rel: str) -> str:
        """``file``, ``dir``, ``symlink``, ``other`` or ``missing`` (not following links)."""
        try:
            mode = os.lstat(self.fspath(rel)).st_mode
        except FileNotFoundError:
            return "missing"
        if stat.S_ISLNK(mode):
            return "symlink"
        return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    # ------------------------------------------------------------------ reading

    def read_bytes(self, rel: str) -> bytes:
        """A file's bytes. A symlink is followed only inside the repo; a folder or any file
        that is not a regular one is refused (one ``lstat``, then the read: every file of
        the repo comes through here)."""
        path = self.fspath(rel)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = Path(path).resolve()
                if self.root not in target.parents:
                    raise RepoError(f"{rel}: symlink leads outside the repo ({target})")
                st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                raise RepoError(f"{rel}: is a directory, expected a file")
            if not stat.S_ISREG(st.st_mode):
                raise RepoError(f"{rel}: not a regular file")
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise RepoError(f"{rel}: no such file") from None
        except OSError as exc:
            raise RepoError(f"{rel}: cannot read ({exc.strerror})") from None

    def read_or_none(self, rel: str) -> bytes | None:
        """A file's bytes, None when there is no such file (other problems raise)."""
        try:
            return self.read_bytes(rel)
        except RepoError:
            if self.kind(rel) == "missing":
                return None
            raise

    # ------------------------------------------------------------------ migrate's folder

    def cache_dir(self) -> Path:
        """Where migrate keeps what it can recompute: inside the git repository around the
        data repo (``.git/migrate/<key>/``: never committed, kept by every checkout of that
        clone), else ``data/.migrate/cache/`` (which git would ignore)."""
        git = _git_dir(self.root)
        if git is None:
            return self.root / CACHE_DIR
        key = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return git / "migrate" / key

    def own_folder(self) -> None:
        """Create ``data/.migrate/`` with the ``.gitignore`` that keeps what a run leaves
        only while it runs (lock, staging archive, temporary files) and the cache out of
        every commit (``git add data`` is the README's advice)."""
        ignore = self.path(IGNORE_FILE)
        if ignore.is_file():
            return
        ignore.parent.mkdir(parents=True, exist_ok=True)
        text = "# migrate's own: never committed (see migrate's README, 'The ledger')\n"
        ignore.write_text(text + "".join(p + "\n" for p in IGNORED), encoding="utf-8")

    def tmp_for(self, rel: str) -> str:
        """Where a new version of ``rel`` is written before it is renamed over it: a
        folder git ignores, so that a run killed meanwhile leaves nothing to commit."""
        return self.fspath(f"{TMP_DIR}/{rel.replace('/', '%')}")

    def write_atomic(self, rel: str, data: bytes | list[bytes], *, sync: bool = True) -> None:
        """Replace ``rel`` with ``data`` (bytes, or parts written one after the other):
        a temporary file in migrate's folder, fsync, rename, fsync of the folder."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        self.own_folder()
        tmp = Path(self.tmp_for(rel))
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = file_mode(target)
            with open(tmp, "wb") as fh:
                fh.writelines([data] if isinstance(data, bytes) else data)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise RepoError(f"{rel}: cannot write ({exc.strerror})") from None
        if sync:
            sync_dir(target.parent)

    def rename(self, src: Path, dst: Path) -> None:
        """Rename within the repo, durably."""
        try:
            os.replace(src, dst)
        except OSError as exc:
            where = dst.relative_to(self.root)
            raise RepoError(f"{where}: cannot write ({exc.strerror})") from None
        sync_dir(dst.parent)

    def remove(self, rel: str) -> None:
        """Take out a file of migrate's own (absent is fine)."""
        self.path(rel).unlink(missing_ok=True)

    def read_cache(self, name: str) -> str | None:
        try:
            return (self.cache_dir() / name).read_text(encoding="utf-8")
        except OSError:
            return None

    def write_cache(self, name: str, text: str) -> None:
        """Best effort: a cache that cannot be written is recomputed next time."""
        with contextlib.suppress(OSError):
            self.cache_dir().mkdir(parents=True, exist_ok=True)
            (self.cache_dir() / name).write_text(text, encoding="utf-8")

    def remove_own_folder(self) -> None:
        """At base migrate's folder does not exist (nor its cache)."""
        shutil.rmtree(self.cache_dir(), ignore_errors=True)
        p = self.root / LEDGER_DIR
        if p.is_dir():
            shutil.rmtree(p)
            sync_dir(p.parent)


def _git_dir(start: Path) -> Path | None:
    """The git directory of the work tree around ``start`` (a worktree's ``.git`` file
    points at it), or None."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text.removeprefix("gitdir:").strip())
                return target if target.is_absolute() else (folder / target).resolve()
            return None
    return None
