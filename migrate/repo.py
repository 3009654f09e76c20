"""The data repo: finds the files this tool owns, reads them safely, writes them atomically.

One object owns all I/O on a checkout (yoyo's lesson): steps and checks never open files
themselves. Only ``data/failures/*.jsonl`` and the queue files are ever rewritten; the
ledger lives in ``data/.migrate/`` and the lock in ``data/.migrate.lock``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import RepoError

FAILURES_DIR = "data/failures"
LEDGER_DIR = "data/.migrate"
#: ``write_atomic``'s temporary file (``.NAME.migrate-tmp``), renamed over NAME when complete
TMP_SUFFIX = ".migrate-tmp"
LOCK_FILE = "data/.migrate.lock"
#: Queue files by family, in the order they appeared upstream.
QUEUE_GLOBS = ("data/priority-queue.json", "data/queues/*.json")

_STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z"
_FAILURE_NAME = re.compile(rf"^(?P<prefix>.+?)(?:-(?P<stamp>{_STAMP}))?\.jsonl$")


@dataclass(frozen=True)
class FailureFile:
    """A ``data/failures/*.jsonl`` file and what its name says.

    ``ecosystem`` is known only from the name (``homebrew.jsonl``, ``<eco>-<ts>.jsonl``);
    ``batch-<ts>.jsonl`` files mix ecosystems, so theirs is ``None``.
    """

    rel: str
    ecosystem: str | None
    run: str | None
    family: str  # "mixed" (homebrew.jsonl), "timestamped", "batch", "other"

    @classmethod
    @functools.lru_cache(maxsize=256)  # (asked several times per file, one file after another)
    def from_rel(cls, rel: str) -> FailureFile:
        name = rel.rsplit("/", 1)[-1]
        m = _FAILURE_NAME.match(name)
        prefix, stamp = (m.group("prefix"), m.group("stamp")) if m else (name, None)
        if prefix == "batch" and stamp:
            return cls(rel, None, stamp, "batch")
        if stamp:
            return cls(rel, prefix, stamp, "timestamped")
        if name == "homebrew.jsonl":
            return cls(rel, "homebrew", None, "mixed")
        return cls(rel, None, None, "other")


def file_mode(path: Path) -> int | None:
    """A file's permission bits, which a rewrite keeps; None if there is no file yet."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None  # absent (or unreadable: the write or replace will say so)


class DataRepo:
    """A checkout holding ``data/failures`` and/or ``data/queues``."""

    def __init__(self, root: str | os.PathLike[str]):
        root_path = Path(root)
        if not root_path.exists():
            raise RepoError(f"{root}: no such directory")
        if not root_path.is_dir():
            raise RepoError(f"{root}: not a directory")
        self.root = root_path.resolve()
        self._root = str(self.root)
        self._listed: tuple[int, list[str]] | None = None
        if not (self.root / "data").is_dir():
            raise RepoError(
                f"{root}: not a tsuku data repo (no data/ folder)",
                hint="run inside a checkout, or pass --repo DIR",
            )

    # ------------------------------------------------------------------ discovery

    def path(self, rel: str) -> Path:
        return self.root / rel

    def failure_files(self) -> list[FailureFile]:
        """Every ``data/failures/*.jsonl``, sorted by name (directories too, to be reported)."""
        return [FailureFile.from_rel(rel) for rel in self.failure_rels()]

    def failure_rels(self) -> list[str]:
        """The paths of :meth:`failure_files` (what most callers need: 57,000 of them cost
        nothing to list, 0.17 s to turn into ``FailureFile``s). Listed again only when the
        folder changed (a run asks several times)."""
        folder = self.fspath(FAILURES_DIR)
        try:
            stamp = os.stat(folder).st_mtime_ns
            if self._listed is not None and self._listed[0] == stamp:
                return list(self._listed[1])
            names = sorted(n for n in os.listdir(folder) if n.endswith(".jsonl"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        rels = [f"{FAILURES_DIR}/{n}" for n in names]
        self._listed = (stamp, rels)
        return list(rels)

    def fspath(self, rel: str) -> str:
        """:meth:`path` as a string (cheaper, for what is done once per file)."""
        return os.path.join(self._root, rel)

    def kind(self, rel: str) -> str:
        """``file``, ``dir``, ``symlink``, ``other`` or ``missing`` (not following links)."""
        try:
            mode = os.lstat(self.fspath(rel)).st_mode
        except FileNotFoundError:
            return "missing"
        if stat.S_ISLNK(mode):
            return "symlink"
        return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"

    def queue_files(self) -> list[str]:
        """Every queue-like JSON file (priority queues and ``batch-results.json``)."""
        out: list[str] = []
        for pattern in QUEUE_GLOBS:
            out.extend(p.relative_to(self.root).as_posix() for p in sorted(self.root.glob(pattern)))
        return out

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

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    # ------------------------------------------------------------------ writing

    def write_atomic(self, rel: str, data: bytes | list[bytes], *, sync: bool = True) -> None:
        """Replace ``rel`` with ``data`` (bytes, or a list of parts written one after the
        other): temp file in the same folder, fsync, rename, fsync dir."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
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

    def remove(self, rel: str) -> None:
        p = self.root / rel
        if p.exists():
            p.unlink()
            sync_dir(p.parent)

    def rename(self, src: Path, dst: Path) -> None:
        """Rename within the repo, durably."""
        try:
            os.replace(src, dst)
        except OSError as exc:
            where = dst.relative_to(self.root)
            raise RepoError(f"{where}: cannot write ({exc.strerror})") from None
        sync_dir(dst.parent)

    def remove_tree(self, rel: str) -> None:
        """Remove a folder of this tool's (the ledger) and everything in it."""
        import shutil

        p = self.root / rel
        if p.is_dir():
            shutil.rmtree(p)
            sync_dir(p.parent)


def sync_dir(folder: Path) -> None:
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
