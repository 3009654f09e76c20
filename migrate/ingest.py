"""``migrate ingest``: turn new CI artifacts into v2 per-recipe lines that carry ``blocked_by``.

Input: ``validation-results-<platform>.json`` arrays and, where given, ``tsuku install
--json`` outputs (recognized by content, as for ``--evidence``). Every ``fail`` entry
becomes one v2 per-recipe line (the line the CI workflow's jq step writes, at v2), its
blockers merged from the entry's ``blocked_by`` and the install JSON's ``missing_recipes``
for the same recipe (and platform, if stated), with their evidence.
Output: a new ``data/failures/batch-<run>.jsonl`` written atomically (or stdout), so the
CI workflow no longer assembles lines with jq and the format cannot drift again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jsonlines
from pydantic import ValidationError

from migrate import clock, codec
from migrate.engine.plan import known_ledger
from migrate.errors import BadInputError, UsageError
from migrate.evidence import EvidenceSet
from migrate.evidence.artifacts import scan_file
from migrate.evidence.names import merge
from migrate.layout import FAILURES_DIR
from migrate.models import RecipeLineV2
from migrate.queues import load_queue_docs, name_index
from migrate.steps import REGISTRY
from migrate.steps.base import Family
from migrate.store import Store

#: tsuku CLI exit code -> canonical category (formats.md section 3).
EXIT_CATEGORIES = {
    3: "recipe_not_found",
    5: "network_error",
    6: "install_failed",
    7: "verify_failed",
    8: "missing_dep",
    9: "generation_failed",
    124: "network_error",  # shell timeout killed the install (legacy "timeout")
    137: "network_error",
}


def category_for_exit(code: int | None) -> str:
    return (
        EXIT_CATEGORIES.get(code, "generation_failed") if code is not None else "generation_failed"
    )


def build_records(
    repo: Store, files: list[str], run: str, timestamp: str
) -> tuple[list[dict[str, Any]], list[str]]:
    ev = EvidenceSet()
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise UsageError(f"{f}: no such file")
        scan_file(p, p.name, ev)  # (provenance by name: no local path in committed data)
    by_name = name_index(load_queue_docs(repo))
    installs = [f for f in ev.findings if f.source == "install_json"]
    records = []
    for f in ev.findings:
        if f.source != "validation_results":
            continue
        extra = [i for i in installs if i.recipe == f.recipe and (i.platform in (None, f.platform))]
        names = merge(f.names, *(i.names for i in extra))
        evidence = [f.evidence()] if f.names else []
        evidence += [i.evidence() for i in extra if i.names]
        if names:
            blocked_by: list[str] | None = names
        elif f.exit_code == 8 or any(i.exit_code == 8 for i in extra):
            blocked_by = None  # a dependency failure nobody named: unknown
        else:
            blocked_by = []
            evidence = [f.evidence()]
        package_id = by_name.get(f.recipe)
        rec = {  # the line the CI writer's jq step writes, at v2 (see migrate.records)
            "schema_version": 2,
            "recipe": f.recipe,
            "ecosystem": package_id.partition(":")[0] if package_id else None,
            "platform": f.platform,
            "exit_code": f.exit_code,
            "category": "missing_dep" if names else category_for_exit(f.exit_code),
            "blocked_by": blocked_by,
            "timestamp": timestamp,
        }
        if blocked_by is not None:
            rec["evidence"] = evidence
        try:
            RecipeLineV2.model_validate(rec)
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ev.problems.append(
                f"{f.file}: [{f.line}] {f.recipe}: skipped, not a valid failure line ({why})"
            )
            continue
        records.append(rec)
    return records, ev.problems


def ingest(
    repo: Store, files: list[str], *, stdout: bool = False
) -> tuple[str | None, int, list[str]]:
    """Write the records; returns (file written or None, record count, evidence problems)."""
    if not files:
        raise UsageError("give at least one validation-results file")
    if not stdout and REGISTRY.versions_at(known_ledger(repo).current)[Family.FAILURES] != 2:
        raise UsageError(
            "this repo is at base (v1 records); ingest writes v2 lines",
            hint="run `migrate up` first, or use --stdout",
        )
    now = clock.now()
    run = now.strftime("%Y-%m-%dT%H-%M-%SZ")
    records, problems = build_records(repo, files, run, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if problems and not records:
        raise BadInputError("no usable validation results", problems)
    out = io.StringIO()  # the lines as the Go and jq writers would spell them
    with jsonlines.Writer(out, dumps=codec.dumps_line) as writer:
        writer.write_all(records)
    body = out.getvalue()
    if stdout:
        print(body, end="")
        return None, len(records), problems
    rel = f"{FAILURES_DIR}/batch-{run}.jsonl"
    if repo.exists(rel):
        raise UsageError(f"{rel} already exists", hint="wait a second and run again")
    if records:
        repo.write_atomic(rel, body.encode("utf-8"))
    return (rel if records else None), len(records), problems
