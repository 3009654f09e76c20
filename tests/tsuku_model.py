"""A small Python model of tsuku's ``update-queue-status`` workflow: reconcile, then
``queue-maintain`` (markfailures, requeue, reorder), from formats.md section 7 and from
experiments with tsuku's own binary (``../shared/tools/tsuku/queue-maintain``, which
tests/test_tsuku_model.py compares this model with).

It is written from the rules, not from migrate's code, so that tests can put it in the
loop with ``migrate up`` as an independent neighbour. The rules, as observed:

* every ``data/failures/*.jsonl`` line is decoded (a line that does not decode is
  skipped); a line with a non-empty ``failures`` array gives one record per item (its
  *bare name* is the ``package_id`` after the first colon), a line with a non-empty
  ``recipe`` and a non-empty ``category`` one record (bare name: the recipe);
* markfailures, per entry by its status before the run: a ``pending`` entry whose record
  count for its ``name`` is above its ``failure_count`` gets ``failure_count`` = that
  count and becomes ``blocked`` if some record of that name has category ``missing_dep``
  and a non-empty ``blocked_by``, else ``failed`` with ``next_retry_at`` = now +
  min(2^(n-1) h, 7 d); a ``failed`` entry whose ``next_retry_at`` is null or past goes
  back to ``pending`` (and keeps its ``next_retry_at``);
* requeue: a ``blocked`` entry whose name's records name blockers (the union over every
  record, any category) all of which are names of ``success`` entries goes back to
  ``pending``; no recorded blockers: it stays blocked;
* reorder: entries sorted by (priority, -score, name), score = how many names a name
  blocks directly or through a chain of records' ``blocked_by`` (:meth:`Records.scores`);
* the save keeps ``schema_version`` as read, sets ``updated_at`` to now and drops every
  key of an entry outside tsuku's struct (``blocked_by`` among them).

Where unsure: what markfailures does with a line over 1 MiB (tsuku's scanner stops; no
real line comes near); how ties of the reorder's key are ordered (only duplicate names
tie); and the reorder's score where records' blockers form a cycle: the model's memoised
walk in queue order gives tsuku's scores on every real state and on 280 of 300 generated
cases, the others all cyclic (tests/test_tsuku_model.py compares orders only where the
blockers form no cycle; statuses never depend on the order).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from migrate import codec

STRUCT = (
    "name",
    "source",
    "priority",
    "status",
    "confidence",
    "disambiguated_at",
    "failure_count",
    "next_retry_at",
)
QUEUE = "data/queues/priority-queue.json"


class Records:
    """What queue-maintain reads of the failure files, per bare name."""

    def __init__(self, root: Path):
        self.count: Counter[str] = Counter()
        self.missing_with_blockers: set[str] = set()
        self.blockers: dict[str, list[str]] = defaultdict(list)
        for path in sorted((root / "data" / "failures").glob("*.jsonl")):
            for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(line, dict):
                    continue
                failures = line.get("failures")
                if isinstance(failures, list) and failures:
                    for item in failures:
                        pid = str(item.get("package_id") or "")
                        self._add(pid.partition(":")[2] or pid, item)
                elif line.get("recipe") and line.get("category"):
                    self._add(line["recipe"], line)

    def _add(self, name: str, rec: dict[str, Any]) -> None:
        self.count[name] += 1
        names = rec.get("blocked_by") or []
        for n in names:
            if n not in self.blockers[name]:
                self.blockers[name].append(n)
        if rec.get("category") == "missing_dep" and names:
            self.missing_with_blockers.add(name)

    def scores(self, order: list[str]) -> dict[str, int]:
        """How many packages each name blocks, through chains of records' ``blocked_by``:
        a depth-first sum, memoised, over the names in ``order`` (the queue's), a name met
        again on its own chain counting 0 (so a diamond counts twice, and in a cycle the
        score depends on where the walk started, as tsuku's does)."""
        blocks: dict[str, list[str]] = defaultdict(list)  # blocker -> names it blocks
        for name, names in self.blockers.items():
            for b in names:
                blocks[b].append(name)
        memo: dict[str, int] = {}
        walking: set[str] = set()

        def score(n: str) -> int:
            if n in memo:
                return memo[n]
            if n in walking:
                return 0
            walking.add(n)
            memo[n] = total = sum(1 + score(d) for d in blocks.get(n, ()))
            walking.discard(n)
            return total

        return {n: score(n) for n in order}

    def cyclic(self) -> bool:
        """Whether some name blocks itself through a chain of records' blockers."""
        seen: dict[str, int] = {}  # 1: on the walk, 2: done

        def walk(n: str) -> bool:
            if seen.get(n) == 1:
                return True
            if seen.get(n) == 2:
                return False
            seen[n] = 1
            if any(walk(b) for b in self.blockers.get(n, ())):
                return True
            seen[n] = 2
            return False

        return any(walk(n) for n in list(self.blockers))


def go_time(t: datetime, nanos: bool) -> str:
    """Go's RFC 3339 (``time.RFC3339Nano`` trims trailing zeros)."""
    base = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{t.microsecond:06d}000".rstrip("0") if nanos else ""
    return base + (f".{frac}" if frac else "") + "Z"


def _parse(ts: str) -> datetime:
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", ts)
    if not m:
        raise ValueError(ts)
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return base + timedelta(microseconds=int((m.group(2) or "0")[:6].ljust(6, "0")))


def reconcile(root: Path) -> list[str]:
    """The workflow's jq pass: ``success`` for every entry whose recipe is on disk
    (``recipes/*/*.toml``). Returns the names it set."""
    recipes = {p.stem for p in (root / "recipes").glob("*/*.toml")}
    path = root / QUEUE
    doc = json.loads(path.read_text(encoding="utf-8"))
    changed = []
    for e in doc["entries"]:
        if e["name"] in recipes and e["status"] != "success":
            e["status"] = "success"
            changed.append(e["name"])
    if changed:
        path.write_text(codec.dumps_queue(doc), encoding="utf-8")
    return changed


def queue_maintain(root: Path, now: datetime) -> list[tuple[str, str, str]]:
    """One run over ``root``'s unified queue; returns (source, from, to) per status change.
    Writes the queue as tsuku's struct saves it."""
    recs = Records(root)
    path = root / QUEUE
    doc = json.loads(path.read_text(encoding="utf-8"))
    entries = [{k: e.get(k) for k in STRUCT} for e in doc["entries"]]
    changes = []
    for e in entries:  # markfailures
        before = e["status"]
        n = recs.count[e["name"]]
        if before == "pending" and n > (e["failure_count"] or 0):
            e["failure_count"] = n
            if e["name"] in recs.missing_with_blockers:
                e["status"] = "blocked"
            else:
                e["status"] = "failed"
                hours = min(2 ** (n - 1), 7 * 24)
                e["next_retry_at"] = go_time(now + timedelta(hours=hours), nanos=True)
        elif before == "failed" and (
            e["next_retry_at"] is None or _parse(e["next_retry_at"]) <= now
        ):
            e["status"] = "pending"
        if e["status"] != before:
            changes.append((e["source"], before, e["status"]))
    success = {e["name"] for e in entries if e["status"] == "success"}
    for e in entries:  # requeue
        names = recs.blockers.get(e["name"], [])
        if e["status"] == "blocked" and names and set(names) <= success:
            e["status"] = "pending"
            changes.append((e["source"], "blocked", "pending"))
    scores = recs.scores([e["name"] for e in entries])  # reorder
    entries.sort(key=lambda e: (e["priority"], -scores.get(e["name"], 0), e["name"]))
    out = {"schema_version": doc["schema_version"], "updated_at": go_time(now, nanos=False)}
    out["entries"] = entries
    path.write_text(codec.dumps_queue(out), encoding="utf-8")
    return changes


def statuses(root: Path) -> dict[str, str]:
    """source -> status of the unified queue."""
    doc = json.loads((root / QUEUE).read_text(encoding="utf-8"))
    return {e["source"]: e["status"] for e in doc["entries"]}
