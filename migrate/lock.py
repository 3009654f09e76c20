"""One writer at a time: an exclusive lock file recording pid, host and start time.

``data/.migrate.lock`` is created with O_EXCL. A lock left by a dead process on this host
is recognized as stale and taken over (with a notice); a live one, or one from another
host, refuses the run with a message saying how to clear it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from migrate import clock
from migrate.errors import LockHeld
from migrate.repo import LOCK_FILE, DataRepo


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextmanager
def hold(repo: DataRepo, command: str) -> Iterator[None]:
    path = repo.path(LOCK_FILE)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": clock.now_iso(),
        "command": command,
    }
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read(path)
            pid, host = held.get("pid"), held.get("host")
            if host == info["host"] and isinstance(pid, int) and not _alive(pid):
                print(
                    f"migrate: removing stale lock of dead process {pid}"
                    f" (started {held.get('started_at')})",
                    file=sys.stderr,
                )
                path.unlink(missing_ok=True)
                continue
            raise LockHeld(
                f"another migrate run holds {LOCK_FILE}"
                f" (pid {pid} on {host}, since {held.get('started_at')},"
                f" running {held.get('command')!r})",
                hint=f"wait for it to finish; if no run is active, delete {LOCK_FILE}",
            ) from None
        except OSError as exc:
            raise LockHeld(f"cannot create {LOCK_FILE}: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        break
    else:  # pragma: no cover - two stale takeovers in a row
        raise LockHeld(f"could not take {LOCK_FILE}", hint=f"delete {LOCK_FILE} and retry")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
