"""Step 0001 records-v2: every Shape A record and Shape B line becomes one v2 line.

Same file, same order. The ledger patch of a file is its *layout*: the list of v1 lines
as runs — ``{"A": {envelope header}, "n": k}`` (an envelope of k records), ``{"B": k}``
(k platform lines), ``{"v2": k}`` (lines already at v2, passed through) and
``{"blank": text}`` — which is all ``down`` needs to regroup the v2 lines into the
original v1 lines. Everything else is in the records themselves.

Ecosystem of a Shape B line: from the file name (``homebrew.jsonl``, ``homebrew-<ts>``);
in ``batch-<ts>`` files from the queue when the recipe name is unambiguous, else null.
It is never assumed to be homebrew (the upstream dashboard's bug).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from migrate import codec
from migrate.failures_index import FileLatest, SiblingFacts
from migrate.models import V1_DICTS, FailureRecordV2
from migrate.parallel import map_files
from migrate.queues import fingerprint, load_queue_docs, name_index, queue_ids, queue_problems
from migrate.reader import (
    ParsedLine,
    Problem,
    join_lines,
    parse_line,
    split_lines,
    validation_problems,
)
from migrate.records import (
    ConversionError,
    canonical_or_none,
    from_envelope,
    from_platform_line,
    to_envelope_item,
    to_platform_line,
)
from migrate.repo import DataRepo, FailureFile
from migrate.steps.base import Step, UpResult

#: The fast path takes only lines that start as the upstream writers start them; pydantic's
#: ``Literal[1]`` would also take ``true`` or ``1.0``, which the strict path refuses.
_V1_PREFIX = b'{"schema_version":1,'


@dataclass(frozen=True)
class Context:
    names: dict[str, str | None]  # recipe name -> package id (None: ambiguous)
    quarantine: bool = False  # move bad lines into the ledger instead of refusing
    #: the queues' package ids and their fingerprint: each file's latest record of each
    #: is handed on (``UpResult.carry``) for step 0003, which then need not scan the file
    queue_ids: tuple[frozenset[str], str] | None = None
    #: every package with a platform line that may take a sibling's blockers, and their
    #: fingerprint: each file's facts for step 0002's sibling lookups are handed on
    #: (``SiblingFacts``)
    sibling_candidates: tuple[frozenset[str], str] | None = None
    #: queue package -> (ts key, file) of its latest record among the files done so far
    winners: dict[str, tuple[str, str]] = field(default_factory=dict)


_V2_KEYS = tuple(FailureRecordV2.model_fields)  # in the order this tool writes them
#: shared by the carries of all files with nothing to hand on (never changed)
_NO_ENTRIES: dict[str, Any] = {}


def _queue_latest(kept: tuple[str, Any]) -> dict[str, Any] | None:
    """The entries of the FileLatest in a file's (checksum, carry) from this step."""
    latest = kept[1][0]
    return latest[1] if latest is not None else None


class _Invalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__(problems)
        self.problems = problems


def fast_v1(shape: str, raw: bytes) -> dict[str, Any] | None:
    """A v1 line of ``shape`` ("A" or "B") decoded by orjson and validated as plain dicts
    by the rules of its model (:data:`migrate.models.V1_DICTS`), or None: the line then
    takes the strict path. (pydantic's own JSON parser is slower on these long messages:
    a fifth more time.) Lenient only where Go never writes (a duplicate key: the last one
    wins); such a line is never Go's canonical bytes, and ``_convert`` then decodes it
    strictly."""
    try:
        return V1_DICTS[shape].validate_python(codec.loads_own(raw))
    except (ValidationError, ValueError):  # (orjson's errors are ValueErrors)
        return None


def _parse_lines(rel: str, data: bytes) -> Iterator[ParsedLine]:
    """Every line of a v1 file, parsed: a line as Go and jq write it by :func:`fast_v1`
    (flagged ``fast``); any other, or one that fails there, by the strict path of
    :func:`migrate.reader.parse_line`, which names the problem, and its model becomes the
    same dicts."""
    for lineno, raw in split_lines(data):
        if not raw.strip():
            yield ParsedLine(lineno, raw)
            continue
        if raw.startswith(_V1_PREFIX):  # as Go and jq write it: an integer 1, first
            shape = "A" if b'"failures":' in raw else "B"
            obj = fast_v1(shape, raw)
            if obj is not None:
                yield ParsedLine(lineno, raw, shape, obj, fast=True)
                continue
        pl = parse_line(rel, lineno, raw)
        if pl.shape in ("A", "B") and pl.model is not None:
            pl.model = pl.model.model_dump()  # (the same keys and values, defaults included)
        yield pl


class RecordsV2(Step):
    #: files already all v2 are recorded too, so that `down` leaves them as they were
    #: instead of taking them for files added later (see ``down_unrecorded``)
    records_unchanged = True
    family = "failures"
    id = "0001"
    name = "records-v2"
    description = "rewrite every v1 failure record (shapes A and B) as one schema_version 2 line"

    def files(self, repo: DataRepo) -> list[str]:
        return [f.rel for f in repo.failure_files()]

    def preflight(self, repo: DataRepo) -> list[Problem]:
        out = queue_problems(repo)
        for ff in repo.failure_files():
            if repo.path(ff.rel).is_dir():
                out.append(Problem(ff.rel, 0, "is a directory, expected a file"))
            elif repo.path(ff.rel).is_symlink():
                out.append(
                    Problem(
                        ff.rel,
                        0,
                        "is a symlink: migrate rewrites files in place and"
                        " would replace the link with a file; make it a file",
                    )
                )
        return out

    def prepare(self, repo: DataRepo, options: dict[str, Any]) -> Context:
        names = name_index(load_queue_docs(repo))
        then = options.get("_then", ())
        candidates = None
        if "0002" in then:  # step 0002 runs next: gather what its prepare would read
            pids: set[str] = set()
            for found in map_files(
                lambda rel: self._sibling_candidates(repo, rel, names),
                self.files(repo),
                options.get("jobs", 1),
            ):
                pids |= found
            candidates = (frozenset(pids), fingerprint(frozenset(pids)))
        return Context(
            names,
            bool(options.get("quarantine")),
            queue_ids(repo) if "0003" in then else None,
            candidates,
        )

    def _sibling_candidates(
        self, repo: DataRepo, rel: str, names: dict[str, str | None]
    ) -> set[str]:
        """The package id of every platform line of a file (Shape B, or v2 platform scope)
        that may take a sibling's blockers (exit code 8 or a missing dependency, no blockers
        of its own), read before conversion: a superset of the packages step 0002 looks up
        siblings for. (A line this misses costs only speed: step 0002 then reads the files
        itself.)"""
        data = repo.read_bytes(rel)
        out: set[str] = set()
        if b'{"schema_version":1,"recipe"' not in data and b'"scope":"platform"' not in data:
            return out  # (needles that end in a rare byte scan fast)
        ff = FailureFile.from_rel(rel)
        for _, raw in split_lines(data):
            if b'"failures"' in raw or not raw.strip():
                continue  # an envelope: package records only
            try:
                obj = codec.loads_record(raw)
            except ValueError:
                continue  # step 0001 names it
            if not isinstance(obj, dict) or obj.get("blocked_by"):
                continue
            category = obj.get("category")
            if obj.get("exit_code") != 8 and not (
                isinstance(category, str) and canonical_or_none(category) == "missing_dep"
            ):
                continue
            if obj.get("schema_version") == 2:
                pid = obj.get("package_id") if obj.get("scope") == "platform" else None
            else:
                recipe = obj.get("recipe")
                pid = self._package_id(ff, recipe, names) if isinstance(recipe, str) else None
            if isinstance(pid, str):
                out.add(pid)
        return out

    def keep_carry(self, ctx: Context, kept: dict[str, Any], rel: str, carry: Any) -> None:
        """Of each queue package, keep only the file that holds its latest record (later
        files win ties, as in ``latest_package_failures``): what is handed on to step 0003
        follows the queue's size, not the number of records. Fingerprints and empty parts
        are shared between files, so a file with nothing to hand on costs a few tuples."""
        digest, (latest, facts) = carry
        if latest is not None:
            latest = (sys.intern(latest[0]), latest[1] or _NO_ENTRIES)
        if facts is not None:
            facts = (sys.intern(facts[0]), facts[1], facts[2] or (), facts[3] or ())
        carry = kept[rel] = (digest, (latest, facts))
        entries = _queue_latest(carry)
        for pid, (key, *_) in list(entries.items()) if entries else ():  # (not _NO_ENTRIES)
            cur = ctx.winners.get(pid)
            if cur is not None and key < cur[0]:
                del entries[pid]  # another file holds a later record
                continue
            if cur is not None:
                del _queue_latest(kept[cur[1]])[pid]  # superseded by this file's
            ctx.winners[pid] = (key, rel)

    # ------------------------------------------------------------------ up

    def up(self, rel: str, data: bytes, ctx: Context) -> UpResult:
        ff = FailureFile.from_rel(rel)
        res = UpResult(b"", exact=not data or data.endswith(b"\n"))
        # one growing buffer, not a list of lines: each encoded line is freed as soon as it
        # is copied in (orjson's results keep their whole working buffer allocated)
        out = bytearray()
        written = 0  # v2 lines so far
        envelope_validated = False  # a record of an envelope of this file was validated
        canonical = True  # every line written has the canonical layout (else: no carry)
        layout: list[dict[str, Any]] = []
        latest = FileLatest(*ctx.queue_ids) if ctx.queue_ids else None
        siblings = SiblingFacts(*ctx.sibling_candidates) if ctx.sibling_candidates else None

        def run_of(kind: str) -> None:
            if layout and kind in layout[-1] and kind not in ("A", "blank", "q", "q64"):
                layout[-1][kind] += 1
            else:
                layout.append({kind: 1})

        for pl in _parse_lines(rel, data):
            if pl.shape is None and not pl.problems:
                layout.append({"blank": pl.raw.decode("utf-8", "replace")})
                res.exact = res.exact and pl.raw.decode("utf-8", "replace").encode() == pl.raw
                res.counts["blank lines"] += 1
                continue
            problems = list(pl.problems)
            lines = b""  # the v2 lines, each with its newline
            recs: list[dict[str, Any]] = []
            if not problems:
                try:
                    validate = pl.shape != "A" or not envelope_validated
                    lines, recs = self._convert(pl, rel, ff, ctx, res, written, validate)
                    envelope_validated = envelope_validated or (pl.shape == "A" and bool(recs))
                    # a v2 line passed through with its keys in another order, or defaults
                    # left out, is not the layout the next steps' byte scans rely on
                    canonical = canonical and (pl.shape != "v2" or tuple(recs[0]) == _V2_KEYS)
                except ConversionError as exc:
                    problems.append(Problem(rel, pl.lineno, str(exc), exc.field))
                except codec.DecodeError as exc:  # found by the strict decoder, see _convert
                    problems.append(Problem(rel, pl.lineno, str(exc)))
                except _Invalid as exc:
                    problems.extend(exc.problems)
            if problems:
                if not ctx.quarantine:
                    res.problems.extend(problems)
                    continue
                try:  # moved verbatim into the ledger; down puts it back in place
                    layout.append({"q": pl.raw.decode("utf-8")})
                except UnicodeDecodeError:
                    layout.append({"q64": base64.b64encode(pl.raw).decode("ascii")})
                res.counts["lines quarantined"] += 1
                res.notes.extend(f"quarantined {p}" for p in problems)
                continue
            if pl.shape == "A":
                env = pl.model
                header = {
                    "ecosystem": env["ecosystem"],
                    "environment": env["environment"],
                    "updated_at": env["updated_at"],
                }
                layout.append({"A": header, "n": len(recs)})
                res.counts["shape A records"] += len(recs)
            elif pl.shape == "B":
                run_of("B")
                res.counts["shape B lines"] += 1
            else:
                run_of("v2")
                res.counts["v2 lines kept"] += 1
            out += lines
            if latest:
                latest.add_all(written + 1, recs)
            if siblings:
                siblings.add_all(written + 1, recs)
            written += len(recs)
        res.data = bytes(out)
        res.patch = {"layout": layout}
        res.counts["v2 lines"] = written
        if (latest or siblings) and canonical:  # (else later steps read the file itself)
            res.carry = (
                latest.carry() if latest else None,
                siblings.carry() if siblings else None,
            )
        return res

    def _convert(
        self,
        pl: ParsedLine,
        rel: str,
        ff: FailureFile,
        ctx: Context,
        res: UpResult,
        written: int,
        validate: bool = True,
    ) -> tuple[bytes, list[dict[str, Any]]]:
        """The v2 lines of one valid v1 line (each with its newline) and their records
        (raises ConversionError, or DecodeError for a line only the strict decoder refuses),
        and whether the v1 line comes back byte for byte from them (``res.exact``).

        Within an envelope, a record's own values were validated by the v1 model and the
        values derived from them (ecosystem and name from a valid package id, canonical
        category, truncation flag, evidence) are valid by construction
        (tests/test_properties.py runs ``check`` after ``up`` on generated v1 files). What
        a line's records take from outside themselves (the run from the file name or the
        envelope, the platform, a Shape B line's package id from the file name or the
        queue) is the same for all of them: the first record is validated in full
        (``validate``). The caller asks it of every Shape B line, whose package id comes from
        the file name or the queue, but of one envelope per file only: an envelope's platform
        and timestamp were validated by its v1 model, and the run derived from them or from
        the file name has the run id's form by construction.
        """
        if pl.shape == "v2":  # already v2 (e.g. `migrate ingest`): written canonical; a
            # line another writer spelled differently comes back from the ledger's copy
            rec = codec.loads(pl.raw)
            line = codec.dumps_bytes(rec)
            res.exact = res.exact and line == pl.raw
            return line + b"\n", [rec]
        if pl.shape == "A":
            env = pl.model
            recs = from_envelope(env, rel, pl.lineno, ff.run)
            back = {
                "schema_version": 1,
                "ecosystem": env["ecosystem"],
                "environment": env["environment"],
                "updated_at": env["updated_at"],
                "failures": [to_envelope_item(r) for r in recs],
            }
        else:
            pid = self._package_id(ff, pl.model["recipe"], ctx.names)
            recs = [from_platform_line(pl.model, rel, pl.lineno, pid, ff.run)]
            back = to_platform_line(recs[0])
            if pid is None:
                res.counts["shape B, ecosystem unknown"] += 1
        for i, rec in enumerate(recs, start=written + 1):
            for ev in rec["evidence"]:
                ev["line"] = i  # provenance points at the v2 line
        lines = codec.dumps_records(recs)
        try:  # what the line shares with all its records, from outside the record
            for rec in recs[:1] if validate else ():  # (an envelope may hold no record)
                FailureRecordV2.model_validate(rec)
        except ValidationError as exc:
            raise _Invalid(validation_problems(rel, pl.lineno, exc)) from None
        if codec.dumps_bytes(back) != pl.raw:
            # Not Go's canonical bytes (another writer, CRLF, ...): down keeps the file's
            # original bytes. A line parsed on the fast path is decoded strictly now, so
            # what the strict decoder refuses (duplicate keys, NaN, a BOM) is refused.
            res.exact = False
            if pl.fast:
                codec.loads(pl.raw)
        return lines, recs

    @staticmethod
    def _package_id(ff: FailureFile, recipe: str, names: dict[str, str | None]) -> str | None:
        if ff.ecosystem is not None:
            return f"{ff.ecosystem}:{recipe}"
        return names.get(recipe)

    # ------------------------------------------------------------------ down

    def down_unrecorded(self, rel: str, data: bytes) -> bytes | None:
        """v2 lines written after this step (``migrate ingest``) become v1 lines: a platform
        record a Shape B line (``blocked_by`` kept), a package record a one-record envelope."""
        if b'"schema_version":2' not in data:
            return None
        lines = []
        for _, raw in split_lines(data):
            rec = codec.loads_record(raw) if raw.strip() else None
            if not rec or rec.get("schema_version") != 2:
                lines.append(raw.decode("utf-8"))
            elif rec["scope"] == "platform":
                lines.append(codec.dumps_line(to_platform_line(rec)))
            else:
                env = {
                    "schema_version": 1,
                    "ecosystem": rec["ecosystem"],
                    "environment": rec["platform"],
                    "updated_at": rec["run"] or rec["timestamp"],
                    "failures": [to_envelope_item(rec)],
                }
                lines.append(codec.dumps_line(env))
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        records = [codec.loads_record(raw) for _, raw in split_lines(data)]
        lines: list[bytes] = []
        pos = 0
        for run in patch["layout"]:
            if "blank" in run:
                lines.append(run["blank"].encode("utf-8"))
            elif "q" in run:
                lines.append(run["q"].encode("utf-8"))
            elif "q64" in run:
                lines.append(base64.b64decode(run["q64"]))
            elif "A" in run:
                items = [to_envelope_item(r) for r in records[pos : pos + run["n"]]]
                pos += run["n"]
                env = {"schema_version": 1, **run["A"], "failures": items}
                lines.append(codec.dumps_bytes(env))
            elif "B" in run:
                for rec in records[pos : pos + run["B"]]:
                    lines.append(codec.dumps_bytes(to_platform_line(rec)))
                pos += run["B"]
            else:
                for rec in records[pos : pos + run["v2"]]:
                    lines.append(codec.dumps_bytes(rec))
                pos += run["v2"]
        if pos != len(records):
            raise ValueError(f"{rel}: {len(records) - pos} v2 lines not covered by the layout")
        return join_lines(lines)
