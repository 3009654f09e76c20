"""Step 0003 queue-status: queue status derived from the backfilled records.

Both queue shapes (legacy ``packages`` keyed by ``id``, unified ``entries`` keyed by
``source``) get the rules of :mod:`migrate.status_rules`: statuses a fixed point of
tsuku's own queue rules, so that tsuku's queue-maintain changes none of them and a
catch-up after its save has nothing to write. ``batch-results.json`` is not a queue.

**The queue keeps its writer's shape** (design.md, "One pipeline, one owner per value"):
only ``status`` changes, and the header when a status does (``updated_at``, and
``schema_version`` 2, a value tsuku's struct keeps as read); no key outside tsuku's struct
is written (blockers live in the records, where tsuku's dashboard and queue-maintain read
them, and in ``explain`` and ``report``); the retry fields and the order of the entries
stay as their writer left them. A ``blocked_by`` that migrate 0.3 wrote is taken out.

Status is derived data: the step runs in every ``up``, on the queue as it is (whoever
saved it last), and writes only when a status changes. Its change set (the ledger's
patch) records, per entry it changed, the status before and after (and a ``blocked_by``
it took out), and the header's ``updated_at`` before and after: :meth:`revert` puts back
each of its values that still holds, so a queue another writer saved since is reverted
entry by entry and one nobody touched comes back byte for byte. ``schema_version`` 2 says
where the values came from: tsuku's jobs read the queue and save it keeping the version
as read, so a save at another version was made from a queue without migrate's output
(another branch's, say): none of the values migrate set before it are in it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from migrate import codec
from migrate.failures_index import latest_in_rows, merge_latest
from migrate.models import LegacyStatus, UnifiedStatus
from migrate.queues import checked_queue, entry_id, parsed_queue, queue_doc
from migrate.reader import Problem, element_lines
from migrate.records import ts_key
from migrate.status_rules import (
    Decision,
    Finding,
    Latest,
    NameRecords,
    Resolved,
    decide,
    finding,
    judge,
    name_records,
    recipe_names,
)
from migrate.steps.base import Derivation, DerivedStep, RunContext

_ABSENT = object()
#: the version a queue migrate derived is saved at (see the module)
MARK = 2
V2_STATUSES = set(get_args(UnifiedStatus)) | set(get_args(LegacyStatus))


def unmigratable(rel: str, data: bytes, kind: str) -> list[Problem]:
    """The entries of a valid queue (``kind``: legacy or unified) this step refuses: a
    status it does not know ('generated', which upstream wrote by mistake for a day). Its
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
    #: recipe file names (``NAME.toml``) and every name the recipes tree provides
    stems: set[str]
    provided: set[str]
    now: str
    names: dict[str, NameRecords] = field(default_factory=dict)
    latest: dict[str, Latest] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """One entry under both rule sets (:mod:`migrate.status_rules`)."""

    index: int
    package_id: str
    name: str
    status: str  # as the queue holds it
    decision: Decision  # tsuku's rules: what step 0003 sets
    judged: Decision  # the tool's own judgement
    finding: Finding | None
    blockers: list[str]  # over all the name's records
    resolved: Resolved


def recipes_of(tree: str | None) -> tuple[set[str], set[str]]:
    """(recipe file names, every name the tree provides) of a recipes tree (None: none)."""
    if not tree:
        return set(), set()
    stems = {p.stem for p in Path(tree).rglob("*.toml")}
    return stems, recipe_names(tree)


class QueueStatus(DerivedStep):
    part_version = 1
    id = "0003"
    name = "queue-status"
    description = "derive queue status (blocked, requeued pending) as tsuku's rules keep it"

    def preflight(self, store, files: list[str]) -> list[Problem]:
        out = []
        for rel in files:
            data = store.read_bytes(rel)
            problems, kind = checked_queue(rel, data)
            out.extend(problems)
            if kind in ("legacy", "unified") and not problems:
                out.extend(unmigratable(rel, data, kind))
        return out

    def prepare(self, ctx: RunContext) -> Context:
        stems, provided = recipes_of(ctx.options.recipes)
        return Context(ctx.queue_ids, stems, provided, ctx.now)

    def gather(self, rel: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Per bare name what its records say (:class:`NameRecords`), and the latest package
        record of each package id: ``[timestamp, category, blocked_by, line]``."""
        return {
            "names": {n: nr.to_json() for n, nr in name_records(rows, rel).items()},
            "latest": {
                pid: [x.timestamp, x.category, x.blocked_by, int(x.where.rpartition(":")[2])]
                for pid, x in latest_in_rows(rows, rel).items()
            },
        }

    def combine(self, ctx: Context, parts: Iterable[tuple[str, Any]]) -> None:
        names: dict[str, NameRecords] = {}
        latest = []
        for rel, part in parts:
            for n, v in part["names"].items():
                nr = NameRecords.from_json(v)
                if n in names:
                    names[n].add(nr)
                else:
                    names[n] = nr
            latest.append(
                {
                    pid: Latest(ts_key(v[0]), v[0], v[1], v[2], f"{rel}:{v[3]}")
                    for pid, v in part["latest"].items()
                    if pid in ctx.queue_ids
                }
            )
        ctx.names, ctx.latest = names, merge_latest(latest)

    # ------------------------------------------------------------------ the rules

    def verdicts(
        self, rel: str, kind: str, entries: list[dict[str, Any]], ctx: Context
    ) -> list[Verdict]:
        """Every entry of a queue (``kind``: legacy or unified) under both rule sets."""
        resolved = Resolved.of(entries, ctx.stems, ctx.provided)
        key = "source" if kind == "unified" else "id"
        quiet: dict[str, tuple[Decision, Decision]] = {}  # (most entries have no record)
        out = []
        for i, e in enumerate(entries):
            pid, status = e[key], e["status"]
            rec = ctx.names.get(e["name"])
            latest = ctx.latest.get(pid)
            if rec is None and latest is None and status != "blocked":
                if status not in quiet:
                    quiet[status] = (decide(status, None, None, resolved), judge(None, resolved))
                d, j = quiet[status]
                out.append(Verdict(i, pid, e["name"], status, d, j, None, [], resolved))
                continue
            count = e.get("failure_count") if kind == "unified" else None
            d = decide(status, count, rec, resolved)
            j = judge(latest, resolved)
            f = finding(rel, pid, d, j, rec, latest, resolved)
            blockers = rec.blockers if rec else []
            out.append(Verdict(i, pid, e["name"], status, d, j, f, blockers, resolved))
        return out

    # ------------------------------------------------------------------ up and down

    def derive(self, rel: str, data: bytes, ctx: Context) -> Derivation:
        out = Derivation(data)
        pq = parsed_queue(rel, data)
        if pq.problems or pq.kind not in ("legacy", "unified"):
            out.problems = pq.problems or [Problem(rel, 1, "not a priority queue")]
            return out
        doc, entries, counts = pq.obj, pq.entries, out.tally.counts
        changes = []
        for v in self.verdicts(rel, pq.kind, entries, ctx):
            entry = entries[v.index]
            counts[f"before: {v.status}"] += 1
            counts[f"after: {v.decision.status}"] += 1
            if v.finding is not None:
                counts["entries where migrate's own judgement differs (see check)"] += 1
            ch: dict[str, Any] = {"id": v.package_id}
            if v.decision.status != v.status:
                ch["status"] = [v.status, v.decision.status]
                entry["status"] = v.decision.status
                counts[f"{v.status} -> {v.decision.status}"] += 1
                out.tally.notes.append(
                    f"{rel}: {v.package_id} {v.status} -> {v.decision.status}: {v.decision.rule}"
                )
            if "blocked_by" in entry:  # (written by migrate 0.3: the queue's writer drops it)
                ch["blocked_by"] = {"before": entry.pop("blocked_by")}
                counts["blocked_by taken out (written by migrate 0.3)"] += 1
            if len(ch) > 1:
                changes.append(ch)
        if not changes:
            return out
        header = {"updated_at": [doc["updated_at"], ctx.now]}
        doc["updated_at"] = ctx.now
        if doc["schema_version"] != MARK:
            header["schema_version"] = [doc["schema_version"], MARK]
            doc["schema_version"] = MARK
        out.data = _dumps(doc, data)
        out.changes = {"header": header, "entries": changes}
        return out

    def revert(self, rel: str, data: bytes, changes: Any) -> tuple[bytes, Counter[str]]:
        """See the module: a queue at another version than the one migrate left (2) was
        saved since by a writer that did not read migrate's output, and holds none of
        the values of this change set: it is left as it is."""
        pq = parsed_queue(rel, data)
        if pq.problems or pq.kind not in ("legacy", "unified"):
            raise ValueError(str(pq.problems[0]) if pq.problems else "not a priority queue")
        doc, counts = pq.obj, Counter()
        header = changes.get("header", {})
        if doc.get("schema_version") != MARK:
            return data, counts  # (a save that did not read migrate's output)
        if "unrecorded" in changes:
            _revert_by_position(pq.entries, changes["unrecorded"])
            counts["status back"] += len(changes["unrecorded"].get("status", {}))
        else:
            saved = doc.get("updated_at") != header.get("updated_at", [None, None])[1]
            _revert_entries(pq.entries, changes.get("entries", []), counts, saved)
        moved = bool(counts.keys() & {"status back", "blocked_by taken out", "blocked_by back"})
        holds_blockers = any("blocked_by" in e for e in pq.entries)
        for key, (before, after) in header.items():
            if key == "schema_version" and holds_blockers:
                continue  # (a queue holding blocked_by stays at 2, where its model has them)
            if doc.get(key) == after and before != after:
                doc[key], moved = before, True
        if not moved:
            return data, counts
        return _dumps(doc, data), counts


def _dumps(doc: dict[str, Any], like: bytes) -> bytes:
    """A queue written as its writer writes it (Go's HTML escaping, unless ``like``, the
    bytes it replaces, shows a raw ``<``, ``>`` or ``&``: the legacy queue's writer)."""
    return codec.dumps_queue(doc, codec.escapes_html(like.decode("utf-8"))).encode("utf-8")


def _revert_entries(
    entries: list[dict[str, Any]], changes: list[dict], counts: Counter[str], saved: bool
) -> None:
    """``saved``: another writer saved the queue since the change set was made."""
    where: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        where[entry_id(entry)].append(entry)
    # a save with no blocked_by at all is a struct's that drops them (tsuku's): one
    # migrate took out is not put back there
    drops = saved and not any("blocked_by" in e for e in entries)
    for ch in changes:
        found = where.get(ch["id"])
        if not found:
            counts["entries their writer removed"] += 1
            continue
        entry = found.pop(0)  # (an id twice in the queue: in order)
        bb = ch.get("blocked_by", {})
        # blockers the writer set itself make the entry theirs, status included (and a
        # queue keeps blocked_by on blocked entries only: its model refuses it elsewhere)
        theirs = "blocked_by" in entry and entry["blocked_by"] != bb.get("after", _ABSENT)
        back = True
        if "status" in ch:
            was, now = ch["status"]
            back = entry["status"] == now and not theirs
            counts["status back" if back else "status kept as their writer set it"] += 1
            if back:
                entry["status"] = was
        if "after" in bb and entry.get("blocked_by", _ABSENT) == bb["after"]:
            entry.pop("blocked_by")  # the blockers migrate 0.3 set, still there
            counts["blocked_by taken out"] += 1
            if "before" in bb and back:
                entry["blocked_by"] = bb["before"]
        elif "blocked_by" in entry:
            counts["blocked_by kept as their writer set it"] += 1
        elif "before" in bb and back and not drops:
            entry["blocked_by"] = bb["before"]  # (taken out by migrate: back with its status)
            counts["blocked_by back"] += 1


def _revert_by_position(entries: list[dict[str, Any]], unrecorded: dict[str, Any]) -> None:
    """Migrate 0.2's patch: statuses and blockers by position (bytes nobody touched)."""
    prior = unrecorded.get("blocked_by", {})
    for i, entry in enumerate(entries):
        entry.pop("blocked_by", None)
        if str(i) in unrecorded.get("status", {}):
            entry["status"] = unrecorded["status"][str(i)]
        if str(i) in prior:
            entry["blocked_by"] = prior[str(i)]
