"""One writer at a time: a lock file recording pid, host, start time and command.

``data/.migrate/lock`` (ignored by git, as everything a run leaves only while it runs)
appears atomically with its content (written to a private temp
file, then hard-linked into place, which fails if a lock exists), so no reader ever sees
an empty lock. A lock left by a dead process on this host is stale: it is taken over by
renaming it aside (only one contender can win that rename), then retrying. A live lock,
or one from another host, refuses the run with a message saying how to clear it. The
private files of a contender killed while it took the lock are removed by the next run
that takes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrate import clock
from migrate.errors import LockHeld, RepoError
from migrate.layout import LOCK_FILE, RUNS_DIR


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # (no such process; a pid no
        return False  # process can have)
    except PermissionError:
        return True
    return True


def _read(path) -> dict:
    """The lock's fields; {} when it cannot be read or is not a JSON object."""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return held if isinstance(held, dict) else {}


def _stale(held: dict, host: str) -> bool:
    pid = held.get("pid")
    return held.get("host") == host and isinstance(pid, int) and not _alive(pid)


def _private(path, host: str, kind: str = "") -> Path:
    """A contender's own file beside the lock, named after its host and pid."""
    return path.with_name(f"{path.name}.{kind}{host}.{os.getpid()}")


def _sweep(path, host: str) -> None:
    """Remove the private files (``lock.HOST.PID``, ``lock.stale.HOST.PID``) of contenders
    killed while they took the lock: written on this host by a process now dead. (A kill
    can leave the first one empty: its name says whose it is.) Names without the host
    (an older layout) go when their lock record names this host (an empty one cannot
    say: it stays). Best effort: what cannot be removed stays."""
    prefix = f"{path.name}."
    for name in os.listdir(path.parent):
        if not name.startswith(prefix):
            continue
        who, _, pid = name[len(prefix) :].rpartition(".")
        if not (pid.isascii() and pid.isdigit()) or _alive(int(pid)):
            continue
        if who in (host, f"stale.{host}") or (
            who in ("", "stale") and _read(path.with_name(name)).get("host") == host
        ):
            with contextlib.suppress(OSError):  # (a folder of that name, say)
                path.with_name(name).unlink(missing_ok=True)


def _acquire(path: Path, tmp: Path, info: dict) -> None:
    """The lock taken (``tmp``: this process's record, hard-linked into place), a stale
    one of a dead process taken over; a live one refuses the run."""
    for _attempt in range(3):
        try:
            os.link(tmp, path)
            break
        except FileExistsError:
            held = _read(path)
            if _stale(held, info["host"]):
                aside = _private(path, info["host"], "stale.")
                try:
                    os.rename(path, aside)  # atomic: one contender wins
                except FileNotFoundError:
                    continue  # somebody else took it over first: try again
                if _read(aside) == held:
                    print(
                        f"migrate: removed the stale lock of dead process {held.get('pid')}"
                        f" (started {held.get('started_at')})",
                        file=sys.stderr,
                    )
                    aside.unlink(missing_ok=True)
                else:  # it changed hands meanwhile: put the live lock back
                    with contextlib.suppress(OSError):
                        os.link(aside, path)
                    aside.unlink(missing_ok=True)
                continue
            if not {"pid", "host", "started_at"} <= held.keys():
                raise LockHeld(
                    f"{LOCK_FILE} exists but does not say who holds it (not a lock"
                    " migrate wrote, or one cut short)",
                    hint=f"if no migrate run is active, delete {LOCK_FILE} and retry",
                ) from None
            raise LockHeld(
                f"another migrate run holds {LOCK_FILE}"
                f" (pid {held.get('pid')} on {held.get('host')},"
                f" since {held.get('started_at')}, running {held.get('command')!r})",
                hint=f"wait for it to finish; if no run is active, delete {LOCK_FILE}",
            ) from None
        except OSError as exc:
            raise RepoError(f"cannot create {LOCK_FILE}: {exc.strerror}") from None
    else:
        raise LockHeld(f"could not take {LOCK_FILE}", hint=f"delete {LOCK_FILE} and retry")


@contextmanager
def hold(store, command: str, *, dry_run: bool = False) -> Iterator[None]:
    """Hold the repo's lock for the block. A dry run that cannot create the lock (a
    read-only checkout) goes on without it; one that finds a live lock is refused, since
    it would read files another run is rewriting. At base (no run in the ledger) migrate's
    folder, made for the lock, is gone again afterwards."""
    path = store.path(LOCK_FILE)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": clock.now_iso(),
        "command": command,
    }
    tmp = _private(path, info["host"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(info), encoding="utf-8")
    except OSError as exc:
        if dry_run:
            yield
            return
        raise RepoError(f"cannot create {LOCK_FILE}: {exc.strerror}") from None
    try:
        _acquire(path, tmp, info)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        _sweep(path, info["host"])
        yield
    finally:
        if _read(path).get("pid") == info["pid"]:
            path.unlink(missing_ok=True)
        _at_base(store, path.parent)


def _at_base(store, folder: Path) -> None:
    """No run in the ledger: migrate's folder (made for the lock, or left by a run killed
    before it wrote its ledger) goes (best effort: a contender taking the lock keeps it)."""
    runs = store.path(RUNS_DIR)
    if runs.is_dir() and any(runs.iterdir()):
        return
    with contextlib.suppress(OSError):
        for p in sorted(folder.rglob("*"), reverse=True):
            if p.name.startswith("lock.") and p.is_file():
                return  # (another contender is taking the lock)
        store.remove_own_folder()
