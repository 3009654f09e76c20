"""The queue's history from git: one version per UTC day, read in one batch.

For each day on which a commit touched ``data/queues/``, the last such commit of the day;
its unified queue (or, before there was one, the legacy homebrew queue) read with one
``git cat-file --batch`` for every day, not one process per commit. A version that does
not parse is skipped and counted, never fatal.
"""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from migrate import codec

#: the queue files read, in order of preference (the unified one first)
QUEUES = ("data/queues/priority-queue.json", "data/queues/priority-queue-homebrew.json")


@dataclass
class DayQueue:
    """The queue as the last commit of a day left it."""

    day: str
    commit: str
    path: str
    counts: dict[str, int]  # entries by status
    blocked: frozenset[str]  # the names of blocked entries


@dataclass
class History:
    days: list[DayQueue] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "day commit path: why"
    source: str = "git"  # or why there is no history


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def queue_history(root: Path) -> History:
    """The daily versions of the queue in the git repository holding ``root`` (empty,
    with the reason in ``source``, when there is none)."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
    except FileNotFoundError:
        return History(source="git is not installed: the records alone")
    if top.returncode != 0:
        return History(source="not a git repository: the records alone")
    prefix = root.resolve().relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    log = _git(root, "log", "--format=%H %ct", "--", "data/queues/")
    if log.returncode != 0:  # (a repository with no commit yet)
        return History(source="no commit touches data/queues/: the records alone")
    last: dict[str, str] = {}  # day -> its last commit (the log is newest first)
    for line in log.stdout.splitlines():
        sha, _, ts = line.partition(" ")
        day = datetime.fromtimestamp(int(ts), UTC).date().isoformat()
        last.setdefault(day, sha)
    days = sorted(last)
    wanted = [(day, last[day], path) for day in days for path in QUEUES]
    history = History()
    found: dict[str, DayQueue] = {}
    for (day, sha, path), blob in zip(
        wanted, _cat(root, [f"{s}:{prefix}{p}" for _, s, p in wanted]), strict=True
    ):
        if blob is None or day in found:
            continue
        try:
            found[day] = _day_queue(day, sha, path, blob)
        except ValueError as exc:
            history.skipped.append(f"{day} {sha[:9]} {path}: {exc}")
    history.days = [found[d] for d in days if d in found]
    return history


def _day_queue(day: str, sha: str, path: str, blob: bytes) -> DayQueue:
    try:
        doc = codec.loads_trusted(blob)  # (orjson: a version is read, not validated)
    except ValueError as exc:
        raise ValueError(f"not JSON ({str(exc).splitlines()[0][:80]})") from None
    entries = doc.get("entries", doc.get("packages")) if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("no entries list")
    try:
        statuses = [e["status"] for e in entries]
        counts = Counter(statuses)
    except (TypeError, KeyError):
        raise ValueError("an entry without a status") from None
    if not all(isinstance(s, str) for s in counts):
        raise ValueError("an entry without a status")
    blocked = frozenset(
        str(e.get("id") or e.get("source") or e.get("name"))
        for e, s in zip(entries, statuses, strict=True)
        if s == "blocked"
    )
    return DayQueue(day, sha, path, dict(counts), blocked)


def _cat(root: Path, specs: list[str]):
    """Each ``commit:path``'s bytes (None: no such file), from one ``git cat-file --batch``
    (requests written by a thread while the answers are read: neither pipe fills)."""
    proc = subprocess.Popen(
        ["git", "-C", str(root), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )

    def feed():
        try:
            proc.stdin.write("".join(s + "\n" for s in specs).encode())
        finally:
            proc.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        for _ in specs:
            header = proc.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":  # "<spec> missing"
                yield None
                continue
            size = int(header[2])
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            yield data
    finally:
        writer.join()
        proc.stdout.close()
        proc.wait()
