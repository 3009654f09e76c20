"""Step 0001 records-v2: every v1 failure line becomes its v2 form, same shape, same place.

An envelope stays one envelope line with its records in order; a per-recipe line stays a
per-recipe line; blank lines stay. What changes is listed in :mod:`migrate.records`:
``schema_version`` 2, canonical categories (legacy name kept), ``blocked_by`` stated on
every record, the ecosystem of a per-recipe line proven or null.

Ecosystem of a per-recipe line: its own, else the file name's (``homebrew.jsonl``,
``homebrew-<ts>``), else in ``batch-<ts>`` files the queue's when the recipe name is
unambiguous, else null. It is never assumed to be homebrew (the upstream dashboard's bug).

The ledger patch (:class:`~migrate.steps.base.LinePatch`) keeps only the lines
:func:`~migrate.records.down_0001` would not give back byte for byte, and with
``--quarantine`` the bad lines, which the step leaves blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.queues import queue_problems
from migrate.reader import Problem, join_lines, parse_line, split_lines
from migrate.records import down_0001, recipe_ecosystem, up_0001
from migrate.repo import DataRepo, FailureFile
from migrate.steps.base import LinePatch, RunContext, Step, UpResult, down_lines


@dataclass(frozen=True)
class Context:
    names: dict[str, str | None]  # recipe name -> package id (None: ambiguous)
    quarantine: bool = False  # blank bad lines (kept in the ledger) instead of refusing


class RecordsV2(Step):
    family = "failures"
    produces = 2
    id = "0001"
    name = "records-v2"
    description = "rewrite every v1 failure line in its v2 form (same shape, same place)"

    def files(self, repo: DataRepo) -> list[str]:
        return repo.failure_rels()

    def preflight(self, repo: DataRepo, files: list[str]) -> list[Problem]:
        out = queue_problems(repo)
        for rel in files:
            kind = repo.kind(rel)
            if kind == "dir":
                out.append(Problem(rel, 0, "is a directory, expected a file"))
            elif kind == "symlink":
                out.append(
                    Problem(
                        rel,
                        0,
                        "is a symlink: migrate rewrites files in place and"
                        " would replace the link with a file; make it a file",
                    )
                )
        return out

    def prepare(self, ctx: RunContext) -> Context:
        return Context(ctx.names, ctx.options.quarantine)

    def up(self, rel: str, data: bytes, ctx: Context) -> UpResult:
        ff = FailureFile.from_rel(rel)
        res = UpResult(b"", exact=True)
        patch = LinePatch(data)
        out: list[bytes] = []
        for lineno, raw in split_lines(data):
            if not raw.strip():
                out.append(raw)
                res.counts["blank lines"] += 1
                continue
            obj, problems = self._line(ff, lineno, raw, ctx, res)
            if problems:
                if not ctx.quarantine:
                    res.problems.extend(problems)
                    continue
                patch.keep(lineno, raw)  # blanked here; down puts it back in place
                out.append(b"")
                res.counts["lines quarantined"] += 1
                res.notes.extend(f"quarantined {p}" for p in problems)
                continue
            if obj is None:  # a v2 line, passed through: the ledger keeps it for down
                patch.keep(lineno, raw)
                out.append(raw)
                continue
            # (another writer's spacing or escaping, a key its writer added: kept as well)
            out.append(patch.changed_line(lineno, raw, obj, down_0001))
        res.data = join_lines(out) if out else b""
        res.patch = patch.to_json()
        return res

    def _line(
        self, ff: FailureFile, lineno: int, raw: bytes, ctx: Context, res: UpResult
    ) -> tuple[dict[str, Any] | None, list[Problem]]:
        """The v2 form of one non-blank line (None for a line already v2), or the problems
        that refuse it."""
        pl = parse_line(ff.rel, lineno, raw)
        if pl.problems:
            return None, pl.problems
        if pl.notes:
            res.counts["unknown keys carried through"] += len(pl.notes)
        if pl.version == 2:  # written by `migrate ingest` or restored by hand: kept
            res.counts["v2 lines kept"] += 1
            return None, []
        eco = None
        if pl.shape == "recipe":
            eco = recipe_ecosystem(ff, pl.obj, ctx.names.get)
            res.counts["per-recipe lines"] += 1
            if eco is None:
                res.counts["per-recipe lines, ecosystem unknown (null)"] += 1
        else:
            res.counts["envelopes"] += 1
            res.counts["envelope records"] += len(pl.obj["failures"])
        return up_0001(pl.obj, eco), []

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        return down_lines(data, patch, down_0001)
