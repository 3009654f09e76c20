"""Step 0003 queue-status: rebuild queue status from the backfilled records.

Both queue shapes (legacy ``packages`` keyed by ``id``, unified ``entries`` keyed by
``source``) get the rules of :mod:`migrate.status_rules`: blocked entries carry
``blocked_by`` (null when unknown) and no other entry does; retry fields are untouched;
``schema_version`` becomes 2; ``updated_at`` moves only when an entry changed; path and
entry order stay. ``batch-results.json`` is not a queue and is left alone.

Status is derived data (``derived``): whenever failure files come or change, the engine
reverts what this step last wrote and derives it again, and a queue another writer
rewrote (tsuku's jobs save it through a struct that drops ``blocked_by``, and keep
``schema_version`` as read) is derived again from its new bytes, whatever version it says.

The ledger patch keeps each changed entry's previous status (and ``blocked_by``, where the
queue already had one), the previous header values and whether the file used Go's HTML
escaping, which is all ``down`` needs; and (``now``) each changed entry's id with the
values this step set, so that a queue another writer saved since is reverted entry by
entry (:meth:`QueueStatus.down_rewritten`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, get_args

from migrate import codec
from migrate.failures_index import latest_in_rows, merge_latest
from migrate.models import LegacyStatus, UnifiedStatus
from migrate.queues import checked_queue, entry_id, parsed_queue, queue_doc
from migrate.reader import Problem, element_lines
from migrate.records import ts_key
from migrate.repo import DataRepo
from migrate.status_rules import Latest, decide, recipe_names
from migrate.steps.base import RunContext, Step, UpResult

_ABSENT = object()
V2_STATUSES = set(get_args(UnifiedStatus)) | set(get_args(LegacyStatus))


def _read_from_its_own_version(doc: Any, patch: Any) -> bool:
    """A queue this step moved to schema_version 2, saved since at another version: its
    writer did not read this step's output (tsuku's struct keeps the version as read;
    upstream writes 1), so none of this step's values are in it."""
    return patch.get("schema_version") != 2 and doc.get("schema_version") != 2


def _names(blocked_by: list[str] | None) -> str:
    """Blockers as text: ``a, b``; ``(none)``; ``unknown`` (null)."""
    return "unknown" if blocked_by is None else ", ".join(blocked_by) or "(none)"


def unmigratable(rel: str, data: bytes, kind: str) -> list[Problem]:
    """The entries of a valid v1 queue (``kind``: legacy or unified) this step refuses: a
    status v2 does not have ('generated', which upstream wrote by mistake for a day). Its
    preflight and ``migrate check`` (a queue up would refuse is a violation) ask."""
    key = "packages" if kind == "legacy" else "entries"
    entries = (queue_doc(rel, data) or {}).get(key, [])
    bad = [i for i, e in enumerate(entries) if e.get("status") not in V2_STATUSES]
    if not bad:
        return []
    text = data.decode("utf-8")
    starts, lines = element_lines(text, key), text.split("\n")  # (lines as JSON counts them)
    out = []
    for i in bad:
        end = starts[i + 1] - 1 if i + 1 < len(starts) else len(lines)
        at = next(  # (the entry's "status" line, where it opens if not found)
            (n + 1 for n in range(starts[i] - 1, end) if '"status"' in lines[n]), starts[i]
        )
        out.append(
            Problem(
                rel,
                at,
                f"status {entries[i].get('status')!r} is not a queue status (upstream wrote"
                " 'generated' by mistake for a day); set it to 'success' or 'pending' by"
                " hand, then run again",
                f"{key}[{i}].status",
            )
        )
    return out


@dataclass
class Context:
    queue_ids: frozenset[str]
    recipes: set[str]
    now: str
    latest: dict[str, Latest] = field(default_factory=dict)


class QueueStatus(Step):
    family = "queues"
    produces = 2
    gathers = True
    derived = True
    id = "0003"
    name = "queue-status"
    description = "rebuild queue status (blocked with blockers, failed, requeued pending)"

    def files(self, repo: DataRepo) -> list[str]:
        return [rel for rel in repo.queue_files() if not rel.endswith("/batch-results.json")]

    def preflight(self, repo: DataRepo, files: list[str]) -> list[Problem]:
        out = []
        for rel in files:
            data = repo.read_bytes(rel)
            problems, kind = checked_queue(rel, data)
            out.extend(problems)
            if kind in ("legacy", "unified") and not problems:
                out.extend(unmigratable(rel, data, kind))
        return out

    def prepare(self, ctx: RunContext) -> Context:
        recipes = recipe_names(ctx.options.recipes) if ctx.options.recipes else set()
        return Context(ctx.queue_ids, recipes, ctx.now)

    def gather(self, rel: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """The latest package record, in this file, of each package: ``[timestamp,
        category, blocked_by, line]``."""
        return {
            pid: [x.timestamp, x.category, x.blocked_by, int(x.where.rpartition(":")[2])]
            for pid, x in latest_in_rows(rows, rel).items()
        }

    def combine(self, prep: Context, parts: Iterable[tuple[str, Any]]) -> None:
        ids = prep.queue_ids
        prep.latest = merge_latest(
            {
                pid: Latest(ts_key(v[0]), v[0], v[1], v[2], f"{rel}:{v[3]}")
                for pid, v in part.items()
                if pid in ids
            }
            for rel, part in parts
        )

    def up(self, rel: str, data: bytes, ctx: Context) -> UpResult:
        res = UpResult(data)
        pq = parsed_queue(rel, data)
        if pq.problems or pq.kind not in ("legacy", "unified"):
            res.problems.extend(pq.problems or [Problem(rel, 1, "not a priority queue")])
            return res
        doc = pq.obj
        entries = pq.entries
        resolved = {e["name"] for e in entries if e["status"] == "success"} | ctx.recipes
        old_status: dict[str, str] = {}
        old_blocked_by: dict[str, Any] = {}
        now: dict[str, dict[str, Any]] = {}  # each changed entry as this step left it
        changed_any = False
        for i, entry in enumerate(entries):
            res.counts[f"before: {entry['status']}"] += 1
            d = decide(entry["status"], ctx.latest.get(entry_id(entry)), resolved)
            if d.changed(entry):
                changed_any = True
                if d.status != entry["status"]:
                    old_status[str(i)] = entry["status"]
                    res.counts[f"{entry['status']} -> {d.status}"] += 1
                    res.notes.append(
                        f"{rel}: {entry_id(entry)} {entry['status']} -> {d.status}: {d.rule}"
                    )
                else:  # same status, blockers added, changed or removed
                    res.counts[f"{d.status}, blocked_by set"] += 1
                    res.notes.append(
                        f"{rel}: {entry_id(entry)} stays {d.status}, blocked_by"
                        f" {_names(entry.get('blocked_by', []))} -> {_names(d.blocked_by)}:"
                        f" {d.rule}"
                    )
                entry["status"] = d.status
                if "blocked_by" in entry:
                    old_blocked_by[str(i)] = entry.pop("blocked_by")
                if d.status == "blocked":
                    entry["blocked_by"] = d.blocked_by
                now[str(i)] = {"id": entry_id(entry), "status": d.status}
                if "blocked_by" in entry:
                    now[str(i)]["blocked_by"] = entry["blocked_by"]
            res.counts[f"after: {entry['status']}"] += 1
        patch = {
            "schema_version": doc["schema_version"],
            "updated_at": doc["updated_at"],
            "escape_html": codec.escapes_html(data.decode("utf-8")),
            "status": old_status,
        }
        if old_blocked_by:
            patch["blocked_by"] = old_blocked_by
        doc["schema_version"] = 2
        if changed_any:
            doc["updated_at"] = ctx.now
        patch["now"] = {"updated_at": doc["updated_at"], "entries": now}
        res.data = codec.dumps_queue(doc, patch["escape_html"]).encode("utf-8")
        res.patch = patch
        # the proof that down gives back these exact bytes, on the bytes just written
        res.exact = self._down_doc(codec.loads(res.data), patch) == data
        return res

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        return self._down_doc(codec.loads(data), patch)

    def carried_over(self, rel: str, data: bytes, patch: Any) -> bytes | None:
        """tsuku's jobs save the queue through a struct that keeps ``schema_version`` as
        read (formats.md section 7): a save at 2 of a queue this step moved to 2 was read
        from this step's output, so the statuses it set that still hold are this step's
        and go back before it derives again (the other writer's changes stay). A save at
        the queue's own version was not read from it (upstream writes v1): taken as is. A
        queue that was at 2 before this step has no such mark: its values that still hold
        go back, as a rollback of that save would do."""
        if "now" not in patch:
            return None  # (no record of the values it set: migrate 0.2 or older)
        try:  # (the same rule as a rollback of that save: down_rewritten)
            return self.down_rewritten(rel, data, patch)[0]
        except ValueError:
            return None  # (not a queue as read: the step names the problem)

    def down_rewritten(self, rel: str, data: bytes, patch: Any) -> tuple[bytes, Counter[str]]:
        """Entry by entry, on a queue another writer saved since: each value this step
        set that still holds goes back (status, ``blocked_by``, the header's
        ``schema_version`` and ``updated_at``); what the writer set, and entries it added
        or removed, stay. A save that was not read from this step's output (see
        :meth:`carried_over`) holds none of its values: left as written. Raises
        ValueError where that cannot be known."""
        pq = parsed_queue(rel, data)
        if pq.problems or pq.kind not in ("legacy", "unified"):
            raise ValueError(str(pq.problems[0]) if pq.problems else "not a priority queue")
        if _read_from_its_own_version(pq.obj, patch):
            return data, Counter()
        if "now" not in patch:
            raise ValueError(
                "the run that wrote it was made by migrate 0.2 or older, which did not record"
                " the values it set"
            )
        doc, counts = pq.obj, Counter()
        where: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in pq.entries:
            where[entry_id(entry)].append(entry)
        prior = patch.get("blocked_by", {})
        # a save with no blocked_by at all is a struct's that drops them (tsuku's): one
        # this step took out is not put back there
        if not any("blocked_by" in e for e in pq.entries):
            prior = {}
        for i, now in patch["now"]["entries"].items():
            found = where.get(now["id"])
            if not found:
                counts["entries their writer removed"] += 1
                continue
            entry = found.pop(0)  # (an id twice in the queue: in order)
            was = patch["status"].get(i, now["status"])
            # blockers the writer set itself make the entry theirs, status included
            theirs = "blocked_by" in entry and entry["blocked_by"] != now.get("blocked_by", _ABSENT)
            back = entry["status"] == now["status"] and not theirs
            if was != now["status"]:
                counts["status back" if back else "status kept as their writer set it"] += 1
                if back:
                    entry["status"] = was
            if "blocked_by" in now and entry.get("blocked_by", _ABSENT) == now["blocked_by"]:
                entry.pop("blocked_by")  # the blockers this step set, still there
                counts["blocked_by taken out"] += 1
                if i in prior and back:
                    entry["blocked_by"] = prior[i]
            elif "blocked_by" in now and "blocked_by" in entry:
                counts["blocked_by kept as their writer set it"] += 1
            elif i in prior and back and "blocked_by" not in entry:
                entry["blocked_by"] = prior[i]  # this step took it out: back with its status
                counts["blocked_by back"] += 1
        moved = bool(counts.keys() & {"status back", "blocked_by taken out", "blocked_by back"})
        keep_v2 = any("blocked_by" in e for e in pq.entries)  # (a v1 queue has none)
        for key, value in (("schema_version", 2), ("updated_at", patch["now"]["updated_at"])):
            if key == "schema_version" and keep_v2:
                continue
            if doc.get(key) == value and patch[key] != value:
                doc[key], moved = patch[key], True
        if not moved:
            return data, counts
        return codec.dumps_queue(doc, codec.escapes_html(data.decode("utf-8"))).encode(), counts

    def same(self, old: bytes, new: bytes) -> bool:
        """Derived again, the queue says what it said: only ``updated_at`` may differ."""
        if old == new:
            return True
        try:
            a, b = codec.loads(old), codec.loads(new)
        except ValueError:
            return False
        a.pop("updated_at", None)
        b.pop("updated_at", None)
        return a == b

    @staticmethod
    def _down_doc(doc: dict[str, Any], patch: Any) -> bytes:
        entries = doc["packages"] if "packages" in doc else doc["entries"]
        prior = patch.get("blocked_by", {})
        for i, entry in enumerate(entries):
            entry.pop("blocked_by", None)
            if str(i) in patch["status"]:
                entry["status"] = patch["status"][str(i)]
            if str(i) in prior:
                entry["blocked_by"] = prior[str(i)]
        doc["schema_version"] = patch["schema_version"]
        doc["updated_at"] = patch["updated_at"]
        return codec.dumps_queue(doc, patch["escape_html"]).encode("utf-8")
