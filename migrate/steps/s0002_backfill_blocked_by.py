"""Step 0002 backfill-blocked-by: fill ``blocked_by`` from every source of evidence.

For each record of each v2 line (an envelope's items, a per-recipe line; lines never move):

* package records (envelope items) — names from the record itself, its ``message``
  (:mod:`migrate.evidence.messages`), and the ``--evidence`` findings assigned to it.
  Names found -> ``blocked_by`` is their union in first-seen order, the category becomes
  ``missing_dep`` (the previous one kept in ``reclassified_from``), and one ``evidence``
  entry per source says where the names came from (the record's own names as a
  ``record`` entry). A true not-found (``package 'X' not found in <eco>``) is never
  touched.
* per-recipe (platform) records — findings for its recipe and platform (validation
  results, install JSON); an exit-8 line is a dependency failure by the CLI's own exit
  code and becomes ``missing_dep``; with no names of its own it takes the blockers of the
  same package's nearest earlier package record (``sibling_record``).
* nothing found -> ``blocked_by`` stays ``null`` (unknown): never ``[]``, never a guess.
  ``[]`` is written only where a source states it (install JSON with no missing recipes).

``line_down`` is :func:`migrate.records.down_0002`, a function of the line alone; the
ledger keeps the lines it changed, and the originals only of lines in another writer's
spelling.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from migrate import codec
from migrate.evidence import EvidenceSet, Finding
from migrate.evidence.artifacts import scan_dirs
from migrate.evidence.messages import blocker_names, true_not_found
from migrate.evidence.names import merge
from migrate.failures_index import package_record_names
from migrate.queues import queue_problems
from migrate.reader import Problem, line_version
from migrate.records import backfill, down_0002, flat_records, shape_of, ts_key
from migrate.steps.base import LineAt, LineProblem, LineStep, RunContext, Tally

#: (file, line, position in the line) of one record
Where = tuple[str, int, int]


class PackagePart(NamedTuple):
    """What one package record says, as a gathered part keeps it (a JSON array)."""

    line: int
    position: int
    package_id: str
    ts: str  # sortable time
    names: list[str]  # the blocker names it proves by itself (sibling lookups)
    platform: str
    run: str | None


class PlatformPart(NamedTuple):
    """What one platform record says (which records a finding describes)."""

    line: int
    package_id: str | None
    name: str
    platform: str
    run: str | None
    ts: str


@dataclass
class Context:
    evidence: EvidenceSet
    names: dict[str, str | None] = field(default_factory=dict)  # recipe -> package id
    assigned: dict[Where, list[Finding]] = field(default_factory=dict)
    #: package_id -> [(ts_key, names, file, line)] of every package record of a package
    #: that has a platform record needing a sibling, sorted by time (stable: file, line)
    package_names: dict[str, list[tuple[str, list[str], str, int]]] = field(default_factory=dict)
    unmatched: list[Finding] = field(default_factory=list)
    wanted: set[str] = field(default_factory=set)  # the recipes the findings name
    assigned_lines: dict[str, set[int]] = field(default_factory=dict)  # file -> lines


def _matches(f: Finding, row: dict[str, Any]) -> bool:
    """Whether finding ``f`` describes the record of ``row``."""
    if row["name"] != f.recipe and row["package_id"] != f.recipe:
        return False
    if f.platform and f.platform != row["platform"]:
        return False
    if not f.platform and row["scope"] != "package":
        return False  # no platform: the orchestrator's own install
    if f.run and f.run != row["run"]:
        return False
    return not (f.package_id and row["package_id"] and f.package_id != row["package_id"])


class BackfillBlockedBy(LineStep):
    produces = 2
    part_version = 2  # (1: migrate 0.3's index, positional lists without a name)
    id = "0002"
    name = "backfill-blocked-by"
    description = "fill blocked_by from messages, CI artifacts, logs and sibling records"

    # ------------------------------------------------------------------ prepare

    def preflight(self, store, files: list[str]) -> list[Problem]:
        return queue_problems(store)

    def prepare(self, ctx: RunContext) -> Context:
        prep = Context(scan_dirs(list(ctx.options.evidence)), ctx.names)
        for f in prep.evidence.findings:
            f.package_id = f.package_id or prep.names.get(f.recipe)
        prep.wanted = {f.recipe for f in prep.evidence.findings}
        return prep

    def gather(self, rel: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """From one file: the packages with a platform record that may need a sibling's
        blockers (``need``), every package record (:class:`PackagePart`) and every
        platform record (:class:`PlatformPart`), as JSON arrays (``part_version`` says
        their layout)."""
        need, pkgs, plats = set(), [], []
        for r in rows:
            ts = ts_key(r["timestamp"])
            if r["scope"] == "package":
                names = package_record_names(r)
                pkgs.append(
                    PackagePart(
                        r["line"],
                        r["position"],
                        r["package_id"],
                        ts,
                        names,
                        r["platform"],
                        r["run"],
                    )
                )
                continue
            plats.append(
                PlatformPart(r["line"], r["package_id"], r["name"], r["platform"], r["run"], ts)
            )
            if r["package_id"] and r["blocked_by"] is None and _dependency(r):
                need.add(r["package_id"])
        return {"need": sorted(need), "pkgs": pkgs, "plats": plats}

    def combine(self, prep: Context, parts: Iterable[tuple[str, Any]]) -> None:
        """Each finding assigned to the records it describes (a finding without a run stamp
        to the latest one), and the package records of each package a platform record
        needs a sibling of, sorted by time."""
        need: set[str] = set().union(*(part["need"] for _, part in parts))
        history: dict[str, dict[Where, tuple[str, list[str]]]] = defaultdict(dict)
        refs: dict[int, list[tuple[Where, str, str | None, str]]] = defaultdict(list)
        findings = prep.evidence.findings
        wanted = prep.wanted

        def hit(where: Where, scope: str, row: dict[str, Any], ts: str) -> None:
            for i, f in enumerate(findings):
                if _matches(f, row):
                    refs[i].append((where, scope, row["package_id"], ts))

        for rel, part in parts:
            for line, pos, pid, ts, names, platform, run in map(PackagePart._make, part["pkgs"]):
                if pid in need:
                    history[pid][(rel, line, pos)] = (ts, names)
                if wanted and (pid in wanted or pid.partition(":")[2] in wanted):
                    row = {"name": pid.partition(":")[2], "package_id": pid}
                    row |= {"platform": platform, "scope": "package", "run": run}
                    hit((rel, line, pos), "package", row, ts)
            if not wanted:
                continue
            for line, pid, name, platform, run, ts in map(PlatformPart._make, part["plats"]):
                if name in wanted or pid in wanted:
                    row = {"name": name, "package_id": pid, "platform": platform}
                    row |= {"scope": "platform", "run": run}
                    hit((rel, line, 0), "platform", row, ts)
        for i, f in enumerate(findings):
            found = refs.get(i, [])
            if not found:
                prep.unmatched.append(f)
                continue
            if not f.run:  # no run stamp: the artifact describes the latest attempt
                latest = max(ts for _, _, _, ts in found)
                found = [r for r in found if r[3] == latest]
            for where, scope, pid, _ in found:
                prep.assigned.setdefault(where, []).append(f)
                prep.assigned_lines.setdefault(where[0], set()).add(where[1])
                if scope == "package" and where in history.get(pid or "", {}):
                    ts, names = history[pid][where]
                    history[pid][where] = (ts, merge(names, f.names))
        prep.package_names = {
            pid: sorted(
                ((ts, names, w[0], w[1]) for w, (ts, names) in recs.items()), key=lambda e: e[0]
            )
            for pid, recs in history.items()
        }

    # ------------------------------------------------------------------ up

    def may_change(self, raw: bytes, at: LineAt, ctx: Context) -> bool:
        return _may_change(raw, at.lineno in ctx.assigned_lines.get(at.rel, ()))

    def line_up(self, line: dict[str, Any], at: LineAt, ctx: Context, tally: Tally):
        try:
            shape = shape_of(line)
            if line_version(line) != self.produces:
                raise ValueError("a schema_version 1 line where 2 is expected")
            rows = flat_records(at.ff, at.lineno, line, ctx.names.get)
        except (ValueError, KeyError, TypeError) as exc:
            raise LineProblem(f"{exc} (see `migrate check`)") from None
        new = None
        records = line["failures"] if shape == "envelope" else [line]
        for pos, row in enumerate(rows):
            rec = self._backfill(records[pos], row, ctx, tally.counts, tally.notes)
            if rec is None:
                continue
            if shape == "recipe":
                return rec
            new = new or {**line, "failures": list(line["failures"])}
            new["failures"][pos] = rec
        return new

    def line_down(self, line: dict[str, Any]) -> dict[str, Any]:
        return down_0002(line)

    def why_kept(self, raw: bytes, line: dict[str, Any]) -> str | None:
        if codec.dumps_bytes(line) != raw:
            return "another writer's spelling (spacing, escapes, key order)"
        if any("evidence" in r or "reclassified_from" in r for r in line.get("failures", [line])):
            return (
                "a v2 line that carried evidence of its own (its writer's): down cannot"
                " tell it from this step's"
            )
        return None

    def _backfill(
        self,
        rec: dict[str, Any],
        row: dict[str, Any],
        ctx: Context,
        counts: Counter[str],
        notes: list[str],
    ) -> dict[str, Any] | None:
        """The record with what the evidence proves, or None when nothing changes."""
        if row["scope"] == "package" and row["message"] and true_not_found(row["message"]):
            counts["true not-found, untouched"] += 1
            return None
        stated = rec["blocked_by"]  # a list (maybe [], "nothing missing"), or None: unknown
        own = stated or []
        found, explicit_none = self._sources(row, ctx, counts)
        names = merge(own, *(n for _, n, _ in found))
        blocked_by, evidence = stated, []
        if names != own:
            if stated is not None and "evidence" not in rec:  # what the record itself said
                evidence.append(
                    {
                        "source": "record",
                        "names": list(stated),
                        "detail": "blocked_by of the record as written",
                        "file": row["file"],
                        "line": row["line"],
                    }
                )
            for source, src_names, ev in found:
                if set(src_names) - set(own):
                    counts[f"records backfilled from {source}"] += 1
                evidence.append(ev)
            blocked_by = names
            where = f"{row['file']}:{row['line']}"
            self._note_disagreement(row, where, stated, found, counts, notes)
        elif not names and explicit_none and stated is None and not _dependency(row):
            blocked_by = []
            evidence.append(explicit_none.evidence())
            counts[f"records known unblocked from {explicit_none.source}"] += 1
        reclassified = None
        if (bool(names) or row["exit_code"] == 8) and rec["category"] != "missing_dep":
            counts[f"reclassified to missing_dep from {rec['category']}"] += 1
            reclassified = rec["category"]
        if blocked_by is None and (_dependency(row) or reclassified):
            counts["unknown blockers left (null)"] += 1
        if not evidence and reclassified is None:
            return None
        return backfill(rec, blocked_by, evidence, reclassified)

    def _sources(self, row, ctx: Context, counts: Counter[str]):
        """(every source that names blockers of the record, as (source, names, evidence);
        a finding that says nothing was missing, or None)."""
        found: list[tuple[str, list[str], dict[str, Any]]] = []
        match = (
            blocker_names(row["message"], row["name"])
            if row["scope"] == "package" and row["message"]
            else None
        )
        if match and match.rejected:
            counts["names rejected (contain /, \\, .., < or >)"] += len(match.rejected)
        if match and match.names:
            ev = {"source": "message", "names": match.names, "detail": match.lines[0][:300]}
            found.append(("message", match.names, ev | {"file": row["file"], "line": row["line"]}))
        explicit_none: Finding | None = None
        for f in ctx.assigned.get((row["file"], row["line"], row["position"]), []):
            if f.names:
                found.append((f.source, f.names, f.evidence()))
            elif f.exit_code != 8:
                explicit_none = explicit_none or f
        if (
            row["blocked_by"] is None
            and not found
            and row["scope"] == "platform"
            and _dependency(row)
        ):
            sib = self._sibling(row, ctx)
            if sib:
                names, file, line = sib
                detail = (
                    f"blockers of {row['package_id']}'s nearest earlier package record"
                    f" ({file}:{line})"
                )
                ev = {"source": "sibling_record", "names": names, "detail": detail}
                found.append(("sibling_record", names, ev | {"file": file, "line": line}))
        return found, explicit_none

    @staticmethod
    def _sibling(row: dict[str, Any], ctx: Context) -> tuple[list[str], str, int] | None:
        """The blockers of the same package's nearest earlier package record, if it names
        any (a nearer record naming none means the miss is not proven: nothing)."""
        key = ts_key(row["timestamp"])
        best = None
        for ts, names, file, line in ctx.package_names.get(row["package_id"], []):
            if ts <= key:
                best = (names, file, line)
        return best if best and best[0] else None

    @staticmethod
    def _note_disagreement(row, where, stated, found, counts, notes) -> None:
        """``stated``: the record's own blocked_by (``[]`` says nothing was missing)."""
        if len(found) + (stated is not None) < 2:
            return  # one source cannot disagree with itself
        sets = [(src, n) for src, n, _ in found]
        if stated is not None:
            sets.insert(0, ("record", stated))
        full = set().union(*(set(n) for _, n in sets))
        truncated = bool(row["message"]) and row["message"].endswith("...")
        differing = [
            src
            for src, n in sets
            if set(n) != full and not (src == "message" and truncated)  # a cut message
        ]  # may hide names: not a disagreement
        if differing:
            counts["records where sources disagree (union taken)"] += 1
            notes.append(
                f"disagreement {where} {row['package_id'] or row['name']}: "
                + "; ".join(f"{src} {', '.join(n) or '(none)'}" for src, n in sets)
            )

    def summary(self, ctx: Context, totals: Counter[str]) -> list[str]:
        ev = ctx.evidence
        lines = []
        if ev.files:
            lines.append(
                "evidence files: " + ", ".join(f"{k} {v}" for k, v in sorted(ev.files.items()))
            )
        lines.extend(f"evidence skipped: {p}" for p in ev.problems)
        for f in ctx.unmatched:
            lines.append(
                f"evidence unmatched: {f.file}{':' + str(f.line) if f.line else ''}"
                f" ({f.source}) names {f.names} for {f.recipe}: no record of that recipe"
                + (f" on {f.platform}" if f.platform else "")
                + (f" in run {f.run}" if f.run else "")
            )
        return lines


def _dependency(row: dict[str, Any]) -> bool:
    """A dependency failure by the record's own category or the CLI's exit code 8."""
    return row["category"] == "missing_dep" or row["exit_code"] == 8


#: What a line needs for ``_backfill`` to change (or count) it, as Go spells it (the bytes
#: of a line starting with :data:`_V2`): a registry error or a true not-found in a message,
#: blockers of its own, exit code 8 or the missing_dep category.
_NEEDLES = (b" not found in ", b'"blocked_by":["', b'"exit_code":8', b'"missing_dep"')
_V2 = b'{"schema_version":2,'


def _may_change(raw: bytes, assigned: bool) -> bool:
    """Whether a line can be changed by the backfill, told from its bytes: two thirds of
    the lines are not decoded at all. A line not in Go's spelling (another writer's
    spacing or escapes: a needle might hide) is always decoded."""
    if assigned or not (raw.startswith(_V2) and raw.endswith(b"}")):
        return True
    if b'": ' in raw or b"\\u00" in raw:
        return True
    return any(needle in raw for needle in _NEEDLES)
