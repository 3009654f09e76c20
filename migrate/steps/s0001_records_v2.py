"""Step 0001 records-v2: every v1 failure line becomes its v2 form, same shape, same place.

An envelope stays one envelope line with its records in order; a per-recipe line stays a
per-recipe line; blank lines stay. What changes is listed in :mod:`migrate.records`:
``schema_version`` 2, canonical categories (legacy name kept), ``blocked_by`` stated on
every record, the ecosystem of a per-recipe line proven or null.

Ecosystem of a per-recipe line: its own, else the file name's (``homebrew.jsonl``,
``homebrew-<ts>``), else in ``batch-<ts>`` files the queue's when the recipe name is
unambiguous, else null. It is never assumed to be homebrew (the upstream dashboard's bug).

A line already at v2 (written by ``migrate ingest``, or restored by hand) is left as it
is. ``line_down`` is :func:`~migrate.records.down_0001`; the lines it cannot give back
byte for byte are the ones :meth:`RecordsV2.why_kept` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from migrate import codec
from migrate.models import LINE_MODELS
from migrate.queues import queue_problems
from migrate.reader import Problem, line_version, unknown_keys, validation_problems
from migrate.records import down_0001, recipe_ecosystem, shape_of, up_0001
from migrate.steps.base import LineAt, LineProblem, LineStep, RunContext, Tally


@dataclass(frozen=True)
class Context:
    names: dict[str, str | None]  # recipe name -> package id (None: ambiguous)


class RecordsV2(LineStep):
    produces = 2
    quarantines = True
    id = "0001"
    name = "records-v2"
    description = "rewrite every v1 failure line in its v2 form (same shape, same place)"

    def preflight(self, store, files: list[str]) -> list[Problem]:
        out = queue_problems(store)
        for rel in files:
            kind = store.kind(rel)
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
        return Context(ctx.names)

    def line_up(self, line: dict[str, Any], at: LineAt, ctx: Context, tally: Tally):
        try:
            shape = shape_of(line)
            version = line_version(line)
        except ValueError as exc:
            raise LineProblem(str(exc)) from None
        try:
            model = LINE_MODELS[(shape, version)].model_validate(line)
        except ValidationError as exc:
            raise LineProblem("invalid", more=validation_problems(at.rel, at.lineno, exc)) from None
        notes = unknown_keys(at.rel, at.lineno, model)
        if notes:
            tally.counts["unknown keys carried through"] += len(notes)
        if version == 2:  # written by `migrate ingest` or restored by hand: left as it is
            tally.counts["v2 lines kept"] += 1
            return None
        eco = None
        if shape == "recipe":
            eco = recipe_ecosystem(at.ff, line, ctx.names.get)
            tally.counts["per-recipe lines"] += 1
            if eco is None:
                tally.counts["per-recipe lines, ecosystem unknown (null)"] += 1
        else:
            tally.counts["envelopes"] += 1
            tally.counts["envelope records"] += len(line["failures"])
        return up_0001(line, eco)

    def line_down(self, line: dict[str, Any]) -> dict[str, Any]:
        return down_0001(line)

    def why_kept(self, raw: bytes, line: dict[str, Any]) -> str | None:
        """What v1 may hold that :func:`down_0001` cannot tell from what step 0001 adds."""
        if codec.dumps_bytes(line) != raw:
            return "another writer's spelling (spacing, escapes, key order)"
        records = line.get("failures", [line])
        if any("blocked_by" in r and r["blocked_by"] is None for r in records):
            return "a v1 record stating blocked_by: null"
        if any("category_legacy" in r for r in records):
            return "a v1 record with a category_legacy of its own"
        if "failures" not in line and "ecosystem" in line:
            return "an ecosystem its writer put on a v1 per-recipe line"
        return None
