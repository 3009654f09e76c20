"""Step 0002 backfill-blocked-by: fill ``blocked_by`` from every source of evidence.

For each v2 record (one line each, lines never move):

* package scope — names from the record itself, its ``message``
  (:mod:`migrate.evidence.messages`), and the ``--evidence`` findings assigned to it.
  Names found -> ``blocked_by`` is their union in first-seen order, the category becomes
  ``missing_dep`` (the previous one kept in ``reclassified_from``), and one ``evidence``
  entry per source says where the names came from. A true not-found
  (``package 'X' not found in <eco>``) is never touched.
* platform scope — findings for its recipe and platform (validation results, install
  JSON); an exit-8 line is a dependency failure by the CLI's own exit code and becomes
  ``missing_dep``; with no names of its own it takes the blockers of the same package's
  nearest earlier package-scope record (``sibling_record``).
* nothing found -> ``blocked_by`` stays ``null`` (unknown): never ``[]``, never a guess.
  ``[]`` is written only where a source states it (install JSON with no missing recipes).

The ledger patch of a file maps each changed line to its previous ``category``,
``reclassified_from``, ``blocked_by`` and evidence count, so ``down`` removes exactly what
``up`` added.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from migrate import codec
from migrate.evidence import EvidenceSet, Finding
from migrate.evidence.artifacts import scan_dirs
from migrate.evidence.messages import TRUE_NOT_FOUND_BYTES, blocker_names, true_not_found
from migrate.evidence.names import merge
from migrate.failures_index import (
    UNKNOWN,
    all_v2_lines,
    decode_v2,
    lines_with,
    package_id_bytes,
    package_record_names,
    refuse_non_v2,
    ts_key,
    v2_lines,
)
from migrate.parallel import map_files
from migrate.queues import load_queue_docs, name_index, queue_problems
from migrate.reader import Problem, join_lines, split_lines
from migrate.repo import DataRepo
from migrate.steps.base import Step, UpResult

#: The keys step 0002 may change, contiguous in a canonical v2 line (``category`` to
#: ``evidence``). ``down`` splices the previous values into the line's bytes between
#: ``,"category":"`` and ``,"message":`` (unescaped, those occur only as these keys), so
#: the rest of the line, the long message above all, is neither decoded nor re-encoded.
_SEGMENT = (
    "category",
    "category_legacy",
    "reclassified_from",
    "exit_code",
    "blocked_by",
    "evidence",
)
_SEG_START = b',"category":"'
_SEG_END = b',"message":'
_MESSAGE = b',"message":"'
_MESSAGE_END = b'","message_truncated":'
_PACKAGE_SCOPE = b',"scope":"package",'
#: a dependency failure by the record's own category or exit code (canonical bytes)
_MISSING_DEP = b'"category":"missing_dep"'
_EXIT_8 = b'"exit_code":8,'


def _untouched_not_found(raw: bytes) -> bool:
    """A canonical line ``_backfill`` leaves alone and counts only as a true not-found,
    told from its bytes: a package record whose message says ``package 'X' not found in
    <eco>``, and neither ``missing_dep`` nor exit code 8 (which ``up`` also counts). Unescaped,
    these keys occur only as the record's own, so the message is the text between them."""
    if b"' not found in " not in raw:  # (a registry error has no quote there)
        return False
    if raw.find(_PACKAGE_SCOPE) < 0 or _MISSING_DEP in raw:
        return False
    start = raw.find(_MESSAGE)
    end = raw.find(_MESSAGE_END, start) if start >= 0 else -1
    return (
        end > 0 and TRUE_NOT_FOUND_BYTES.search(raw, start, end) is not None and _EXIT_8 not in raw
    )


def _bounds(raw: bytes) -> tuple[int, int] | None:
    start = raw.find(_SEG_START)
    end = raw.find(_SEG_END, start + 1) if start > 0 else -1
    return (start + 1, end) if end > 0 else None


def _down_line(raw: bytes, prior: dict[str, Any]) -> bytes:
    """One line back to what it was before step 0002 (``prior`` from the ledger patch)."""
    bounds = _bounds(raw)
    try:
        seg = codec.loads_record(b"{" + raw[bounds[0] : bounds[1]] + b"}") if bounds else None
    except ValueError:
        seg = None
    if not isinstance(seg, dict) or tuple(seg) != _SEGMENT:
        rec = codec.loads_record(raw)  # not a canonical line (edited, --force): re-encode it
        _restore(rec, prior)
        return codec.dumps_bytes(rec)
    _restore(seg, prior)
    # (seg holds the segment's keys in their order: encoded as it is)
    return raw[: bounds[0]] + codec.dumps_bytes(seg)[1:-1] + raw[bounds[1] :]


def _restore(rec: dict[str, Any], prior: dict[str, Any]) -> None:
    rec["category"] = prior["category"]
    rec["reclassified_from"] = prior["reclassified_from"]
    rec["blocked_by"] = prior["blocked_by"]
    del rec["evidence"][prior["evidence"] :]


@dataclass
class Ref:
    rel: str
    line: int
    package_id: str | None
    name: str
    scope: str
    platform: str
    run: str | None
    ts: str


@dataclass
class Context:
    evidence: EvidenceSet
    assigned: dict[tuple[str, int], list[Finding]] = field(default_factory=dict)
    #: package_id -> [(ts_key, names, "file:line")] of every package record of a package
    #: that has a platform line needing a sibling, sorted by time
    package_names: dict[str, list[tuple[str, list[str], str]]] = field(default_factory=dict)
    unmatched: list[Finding] = field(default_factory=list)
    #: built from step 0001's account of the files it wrote in this run (SiblingFacts):
    #: a file whose bytes are no longer those is refused
    from_carry: bool = False


def _skip(rec: dict[str, Any]) -> bool:
    """A true not-found (``package 'X' not found in homebrew``): never touched."""
    msg = rec.get("message")
    return rec["scope"] == "package" and bool(msg) and true_not_found(msg) is not None


class BackfillBlockedBy(Step):
    #: step 0001's account of the files it wrote in this run: what the sibling lookups need
    #: (read in ``prepare`` instead of the files), and each file's latest record per queue
    #: package (this step moves no line and changes no package id, scope or timestamp, so
    #: the same records stay the latest; their category and blockers are updated here and
    #: handed on to step 0003)
    takes_carry = True
    family = "failures"
    id = "0002"
    name = "backfill-blocked-by"
    description = "fill blocked_by from messages, CI artifacts, logs and sibling records"

    def files(self, repo: DataRepo) -> list[str]:
        return [f.rel for f in repo.failure_files()]

    # ------------------------------------------------------------------ prepare

    def preflight(self, repo: DataRepo) -> list[Problem]:
        return queue_problems(repo)

    def prepare(self, repo: DataRepo, options: dict[str, Any]) -> Context:
        ctx = Context(scan_dirs(list(options.get("evidence") or [])))
        by_name = name_index(load_queue_docs(repo))
        wanted: dict[str, list[Finding]] = defaultdict(list)
        for f in ctx.evidence.findings:
            f.package_id = f.package_id or by_name.get(f.recipe)
            wanted[f.recipe].append(f)
            if f.package_id:
                wanted[f.package_id].append(f)
        candidates: dict[int, list[Ref]] = defaultdict(list)  # id(finding) -> refs
        problems: list[Problem] = []
        files = self.files(repo)
        jobs = options.get("jobs", 1)
        if not wanted and self._from_carry(ctx, files, options.get("_carry") or {}):
            return ctx

        def pass1(rel: str) -> tuple[set[str], list[Problem]]:
            """Which packages have a platform line that may need a sibling (bytes first)."""
            pids: set[str] = set()
            probs: list[Problem] = []
            data = repo.read_bytes(rel)
            lines = (
                lines_with(data, b'"scope":"platform"')
                if all_v2_lines(data)
                else v2_lines(rel, data, probs)  # names every line that is not v2
            )
            for lineno, raw in lines:
                if b'"scope":"platform"' in raw and (_EXIT_8 in raw or _MISSING_DEP in raw):
                    rec = decode_v2(rel, lineno, raw, probs)
                    if rec and rec["package_id"] and not rec["blocked_by"]:
                        pids.add(rec["package_id"])
            return pids, probs

        need_sibling: set[str] = set()
        for pids, probs in map_files(pass1, files, jobs):
            need_sibling |= pids
            problems.extend(probs)

        # Pass 2: decode only the lines a finding or a sibling lookup can use (v2 lines are
        # canonical JSON, so these substrings are exact filters).
        def needles(keys) -> list[bytes] | None:
            return [json.dumps(k)[1:-1].encode() for k in keys] if len(keys) <= 64 else None

        want_b = needles(wanted)
        sib_ids = {pid.encode("utf-8") for pid in need_sibling}
        index_of = {id(f): i for i, f in enumerate(ctx.evidence.findings)}

        def pass2(rel: str) -> tuple[list[tuple[int, Ref]], list[tuple[str, str, str, list]]]:
            refs: list[tuple[int, Ref]] = []
            hist: list[tuple[str, str, str, list[str]]] = []
            for lineno, raw in v2_lines(rel, repo.read_bytes(rel), []):
                sib = (
                    sib_ids
                    and b'"scope":"package"' in raw
                    and ((pid_b := package_id_bytes(raw)) in sib_ids or pid_b == UNKNOWN)
                )
                hit = wanted and (want_b is None or any(k in raw for k in want_b))
                if not (sib or hit):
                    continue
                rec = decode_v2(rel, lineno, raw, [])
                if rec is None:
                    continue
                ref = None
                for key in {rec["name"], rec["package_id"]} - {None}:
                    for f in wanted.get(key, ()):
                        if f.platform and f.platform != rec["platform"]:
                            continue
                        if not f.platform and rec["scope"] != "package":
                            continue  # no platform: the orchestrator's own install
                        if f.run and f.run != rec["run"]:
                            continue
                        if f.package_id and rec["package_id"] and f.package_id != rec["package_id"]:
                            continue
                        ref = ref or Ref(
                            rel,
                            lineno,
                            rec["package_id"],
                            rec["name"],
                            rec["scope"],
                            rec["platform"],
                            rec["run"],
                            ts_key(rec["timestamp"]),
                        )
                        refs.append((index_of[id(f)], ref))
                pid = rec["package_id"]
                if rec["scope"] == "package" and pid in need_sibling:
                    names = package_record_names(rec)
                    hist.append((pid, f"{rel}:{lineno}", ts_key(rec["timestamp"]), names))
            return refs, hist

        history: dict[str, dict[str, tuple[str, list[str]]]] = defaultdict(dict)
        findings = ctx.evidence.findings
        if not problems and (wanted or need_sibling):
            for refs, hist in map_files(pass2, files, jobs):
                for i, ref in refs:
                    if ref not in candidates[id(findings[i])]:
                        candidates[id(findings[i])].append(ref)
                for pid, where, ts, names in hist:
                    history[pid][where] = (ts, names)
        refuse_non_v2(problems)
        for f in ctx.evidence.findings:
            refs = candidates.get(id(f), [])
            if not refs:
                ctx.unmatched.append(f)
                continue
            if not f.run:  # no run stamp: the artifact describes the latest attempt
                latest = max(r.ts for r in refs)
                refs = [r for r in refs if r.ts == latest]
            for r in refs:
                ctx.assigned.setdefault((r.rel, r.line), []).append(f)
                where = f"{r.rel}:{r.line}"
                if r.scope == "package" and where in history.get(r.package_id or "", {}):
                    ts, names = history[r.package_id][where]
                    history[r.package_id][where] = (ts, merge(names, f.names))
        ctx.package_names = {
            pid: sorted(
                ((ts, names, where) for where, (ts, names) in recs.items()), key=lambda e: e[0]
            )
            for pid, recs in history.items()
        }
        return ctx

    def keep_carry(self, ctx: Context, kept: dict[str, Any], rel: str, carry: Any) -> None:
        """One fingerprint string for all files (memory per file stays small)."""
        digest, (fp, latest) = carry
        kept[rel] = (digest, (sys.intern(fp), latest))

    @staticmethod
    def _from_carry(ctx: Context, files: list[str], carried: dict[str, tuple[str, Any]]) -> bool:
        """Fill ``ctx.package_names`` from step 0001's SiblingFacts of every file (what passes
        1 and 2 below read), when each file has them and every package needing a sibling
        was among the candidates step 0001 gathered; False leaves ``ctx`` as it was."""
        facts = []
        for rel in files:
            carry = carried.get(rel)  # (checksum, (FileLatest carry, SiblingFacts carry))
            sib = carry[1][1] if carry is not None and carry[1] is not None else None
            if sib is None or not sib[1]:  # none, or a package outside the candidates
                return False
            if facts and sib[0] != facts[0][0]:  # gathered for other candidates
                return False
            facts.append(sib)
        need = {pid for _, _, pids, _ in facts for pid in pids}
        history: dict[str, list[tuple[str, list[str], str]]] = defaultdict(list)
        for rel, (_, _, _, records) in zip(files, facts, strict=True):
            for pid, lineno, ts, names in records:
                if pid in need:
                    history[pid].append((ts, names, f"{rel}:{lineno}"))
        # sorted by time; the sort is stable, so file and line order break ties as above
        ctx.package_names = {pid: sorted(recs, key=lambda e: e[0]) for pid, recs in history.items()}
        ctx.from_carry = True
        return True

    # ------------------------------------------------------------------ up

    def up(self, rel: str, data: bytes, ctx: Context, carry: Any = None) -> UpResult:
        # down writes every line with a final newline: a file without one comes back
        # exactly only from the bytes the ledger keeps
        res = UpResult(b"", exact=not data or data.endswith(b"\n"))
        if ctx.from_carry and carry is None:
            res.problems.append(
                Problem(
                    rel, 0, "changed since step 0001 wrote it in this run; run `migrate up` again"
                )
            )
            return res
        passed_on = carry[0] if carry is not None else None  # step 0001's FileLatest
        fingerprint, latest = passed_on if passed_on is not None else (None, {})
        latest_at = {entry[4]: pid for pid, entry in latest.items()}
        # the lines out, joined once at the end: most are the very objects split from
        # ``data`` (a growing buffer copied them again and again as it grew)
        out: list[bytes] = []
        patch: dict[str, Any] = {}
        # bytes step 0001 wrote in this run (the engine checked the checksum): canonical
        trusted = carry is not None and not ctx.assigned
        assigned = ctx.assigned
        for lineno, raw in split_lines(data):
            # only lines ``_backfill`` may change or count are decoded: a registry error
            # or not-found text, exit 8 or missing_dep, or a finding (inlined: every line
            # of the history comes through here)
            if (
                b"not found in" not in raw
                and _EXIT_8 not in raw
                and _MISSING_DEP not in raw
                and not (assigned and (rel, lineno) in assigned)
            ) or raw.isspace():
                out.append(raw)
                continue
            if trusted and _untouched_not_found(raw):  # (a third of the lines decoded)
                res.counts["true not-found, untouched"] += 1
                out.append(raw)
                continue
            rec = decode_v2(rel, lineno, raw, res.problems)
            if rec is None:
                continue
            prior = {
                "category": rec["category"],
                "reclassified_from": rec["reclassified_from"],
                "blocked_by": rec["blocked_by"],
                "evidence": len(rec["evidence"]),
            }
            if self._backfill(rec, rel, lineno, ctx, res.counts, res.notes):
                patch[str(lineno)] = prior
                new = codec.dumps_bytes(rec)  # the whole record: canonical whatever came in
                # the proof, line by line: down gives back these exact bytes (a line another
                # writer spelled differently does not come back: the ledger keeps the file)
                res.exact = res.exact and _down_line(new, prior) == raw
                # a compact copy kept: orjson's result holds its whole working buffer, a
                # few KB, for as long as it lives
                out.append(bytes(memoryview(new)))
            else:
                out.append(raw)
            if rec["blocked_by"] is None and (
                rec["category"] == "missing_dep" or rec["exit_code"] == 8
            ):
                res.counts["unknown blockers left (null)"] += 1
            if lineno in latest_at:  # (ts key, timestamp, category, blocked_by, line)
                pid = latest_at[lineno]
                key, timestamp, _, _, _ = latest[pid]
                latest[pid] = (key, timestamp, rec["category"], rec["blocked_by"], lineno)
        res.data = join_lines(out)
        res.patch = {"lines": patch} if patch else None
        res.carry = (fingerprint, latest) if passed_on is not None else None
        return res

    def _backfill(
        self,
        rec: dict[str, Any],
        rel: str,
        lineno: int,
        ctx: Context,
        counts: Counter[str],
        notes: list[str],
    ) -> bool:
        if _skip(rec):
            counts["true not-found, untouched"] += 1
            return False
        own = rec["blocked_by"] or []
        found: list[tuple[str, list[str], dict[str, Any]]] = []  # (source, names, evidence)
        match = (
            blocker_names(rec["message"], rec["name"])
            if rec["scope"] == "package" and rec["message"]
            else None
        )
        msg_names = match.names if match else []
        if match and match.rejected:
            counts["names rejected (contain /, \\, .., < or >)"] += len(match.rejected)
        if msg_names:
            found.append(
                (
                    "message",
                    msg_names,
                    {
                        "source": "message",
                        "names": msg_names,
                        "detail": match.lines[0][:300],
                        "file": rel,
                        "line": lineno,
                    },
                )
            )
        explicit_none: Finding | None = None
        for f in ctx.assigned.get((rel, lineno), []):
            if f.names:
                found.append((f.source, f.names, f.evidence()))
            elif f.exit_code != 8:
                explicit_none = explicit_none or f
        if (
            not own
            and not found
            and rec["scope"] == "platform"
            and rec["package_id"]
            and (rec["exit_code"] == 8 or rec["category"] == "missing_dep")
        ):
            sib = self._sibling(rec, ctx)
            if sib:
                names, where = sib
                found.append(
                    (
                        "sibling_record",
                        names,
                        {
                            "source": "sibling_record",
                            "names": names,
                            "detail": f"blockers of {rec['package_id']}'s nearest earlier package"
                            f" record ({where})",
                            "file": where.rsplit(":", 1)[0],
                            "line": int(where.rsplit(":", 1)[1]),
                        },
                    )
                )
        names = merge(own, *(n for _, n, _ in found))
        changed = False
        if names != own:
            for source, src_names, ev in found:
                if set(src_names) - set(own):
                    counts[f"records backfilled from {source}"] += 1
                rec["evidence"].append(ev)
            rec["blocked_by"] = names
            changed = True
            self._note_disagreement(rec, rel, lineno, own, found, counts, notes)
        elif (
            not names
            and explicit_none
            and rec["blocked_by"] is None
            and not (rec["category"] == "missing_dep" or rec["exit_code"] == 8)
        ):
            rec["blocked_by"] = []
            rec["evidence"].append(explicit_none.evidence())
            counts[f"records known unblocked from {explicit_none.source}"] += 1
            changed = True
        dependency = bool(names) or rec["exit_code"] == 8
        if dependency and rec["category"] != "missing_dep":
            counts[f"reclassified to missing_dep from {rec['category']}"] += 1
            rec["reclassified_from"] = rec["category"]
            rec["category"] = "missing_dep"
            changed = True
        return changed

    @staticmethod
    def _sibling(rec: dict[str, Any], ctx: Context) -> tuple[list[str], str] | None:
        """The blockers of the same package's nearest earlier package record, if it names
        any (a nearer record naming none means the miss is not proven: nothing)."""
        key = ts_key(rec["timestamp"])
        best = None
        for ts, names, where in ctx.package_names.get(rec["package_id"], []):
            if ts <= key:
                best = (names, where)
        return best if best and best[0] else None

    @staticmethod
    def _note_disagreement(rec, rel, lineno, own, found, counts, notes) -> None:
        if len(found) + bool(own) < 2:
            return  # one source cannot disagree with itself
        sets = [(src, n) for src, n, _ in found]
        if own:
            sets.insert(0, ("record", own))
        full = set().union(*(set(n) for _, n in sets))
        differing = []
        for src, n in sets:
            if set(n) != full:
                if src == "message" and rec.get("message_truncated"):
                    continue  # a cut message may hide names: not a disagreement
                differing.append(f"{src} {n}")
        if differing and len(sets) > 1:
            counts["records where sources disagree (union taken)"] += 1
            notes.append(
                f"disagreement {rel}:{lineno} {rec['package_id'] or rec['name']}: "
                + "; ".join(f"{src} {n}" for src, n in sets)
            )

    # ------------------------------------------------------------------ down

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        changes = (patch or {}).get("lines", {})
        out = []
        for lineno, raw in split_lines(data):
            prior = changes.get(str(lineno))
            out.append(raw if prior is None else _down_line(raw, prior))
        return join_lines(out)

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
