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

from typing import Any

from pydantic import ValidationError

from migrate import codec
from migrate.models import FailureRecordV2
from migrate.queues import load_queue_docs, name_index, queue_problems
from migrate.reader import Problem, iter_failure_lines, split_lines, validation_problems
from migrate.records import (
    ConversionError,
    from_envelope,
    from_platform_line,
    to_envelope_item,
    to_platform_line,
)
from migrate.repo import DataRepo, FailureFile
from migrate.steps.base import Step, UpResult


class RecordsV2(Step):
    id = "0001"
    name = "records-v2"
    description = "rewrite every v1 failure record (shapes A and B) as one schema_version 2 line"

    def files(self, repo: DataRepo) -> list[str]:
        return [f.rel for f in repo.failure_files()]

    def preflight(self, repo: DataRepo) -> list[Problem]:
        out = queue_problems(repo)
        for ff in repo.failure_files():
            if repo.path(ff.rel).is_symlink():
                out.append(
                    Problem(
                        ff.rel,
                        0,
                        "is a symlink: migrate rewrites files in place and"
                        " would replace the link with a file; make it a file",
                    )
                )
        return out

    def prepare(self, repo: DataRepo, options: dict[str, Any]) -> dict[str, str | None]:
        return name_index(load_queue_docs(repo))

    # ------------------------------------------------------------------ up

    def up(self, rel: str, data: bytes, ctx: dict[str, str | None]) -> UpResult:
        ff = FailureFile.from_rel(rel)
        res = UpResult(b"", exact=not data or data.endswith(b"\n"))
        out: list[str] = []
        layout: list[dict[str, Any]] = []

        def run_of(kind: str) -> None:
            if layout and kind in layout[-1] and kind != "A" and kind != "blank":
                layout[-1][kind] += 1
            else:
                layout.append({kind: 1})

        for pl in iter_failure_lines(rel, data):
            if pl.problems:
                res.problems.extend(pl.problems)
                continue
            if pl.shape is None:
                layout.append({"blank": pl.raw.decode("utf-8", "replace")})
                res.exact = res.exact and pl.raw.decode("utf-8", "replace").encode() == pl.raw
                res.counts["blank lines"] += 1
                continue
            try:
                if pl.shape == "A":
                    env = pl.model
                    recs = from_envelope(env, rel, pl.lineno, ff.run)
                    if res.exact:  # the line this run of records goes back to, on down
                        back = {
                            "schema_version": 1,
                            "ecosystem": env.ecosystem,
                            "environment": env.environment,
                            "updated_at": env.updated_at,
                            "failures": [to_envelope_item(r) for r in recs],
                        }
                        res.exact = codec.dumps_line(back).encode("utf-8") == pl.raw
                    layout.append(
                        {
                            "A": {
                                "ecosystem": env.ecosystem,
                                "environment": env.environment,
                                "updated_at": env.updated_at,
                            },
                            "n": len(recs),
                        }
                    )
                    res.counts["shape A records"] += len(recs)
                elif pl.shape == "B":
                    recs = [
                        from_platform_line(
                            pl.model,
                            rel,
                            pl.lineno,
                            self._package_id(ff, pl.model.recipe, ctx),
                            ff.run,
                        )
                    ]
                    if res.exact:
                        res.exact = codec.dumps_line(to_platform_line(recs[0])).encode() == pl.raw
                    if recs[0]["ecosystem"] is None:
                        res.counts["shape B, ecosystem unknown"] += 1
                    run_of("B")
                    res.counts["shape B lines"] += 1
                else:
                    out.append(pl.raw.decode("utf-8"))
                    if res.exact:
                        res.exact = codec.dumps_line(codec.loads_own(pl.raw)).encode() == pl.raw
                    run_of("v2")
                    res.counts["v2 lines kept"] += 1
                    continue
            except ConversionError as exc:
                res.problems.append(Problem(rel, pl.lineno, str(exc), exc.field))
                continue
            for rec in recs:
                for ev in rec["evidence"]:
                    ev["line"] = len(out) + 1  # provenance points at the v2 line
                try:
                    FailureRecordV2.model_validate(rec)
                except ValidationError as exc:
                    res.problems.extend(validation_problems(rel, pl.lineno, exc))
                    continue
                out.append(codec.dumps_line(rec))
        res.data = "".join(line + "\n" for line in out).encode("utf-8")
        res.patch = {"layout": layout}
        res.counts["v2 lines"] = len(out)
        return res

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
            rec = codec.loads_own(raw) if raw.strip() else None
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
        records = [codec.loads_own(raw) for _, raw in split_lines(data)]
        lines: list[str] = []
        pos = 0
        for run in patch["layout"]:
            if "blank" in run:
                lines.append(run["blank"])
            elif "A" in run:
                items = [to_envelope_item(r) for r in records[pos : pos + run["n"]]]
                pos += run["n"]
                lines.append(codec.dumps_line({"schema_version": 1, **run["A"], "failures": items}))
            elif "B" in run:
                for rec in records[pos : pos + run["B"]]:
                    lines.append(codec.dumps_line(to_platform_line(rec)))
                pos += run["B"]
            else:
                for rec in records[pos : pos + run["v2"]]:
                    lines.append(codec.dumps_line(rec))
                pos += run["v2"]
        if pos != len(records):
            raise ValueError(f"{rel}: {len(records) - pos} v2 lines not covered by the layout")
        return "".join(line + "\n" for line in lines).encode("utf-8")
