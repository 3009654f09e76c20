"""``migrate export``: every failure record flat, one row each, for analysis.

The files keep the shapes tsuku's readers know (an envelope of records, a per-recipe line);
the flat view belongs to analysis. Rows come from :func:`migrate.records.flat_records` at
whatever version each line is (categories canonical, the legacy name beside them), in file
and line order, built into a pandas DataFrame and written as CSV or JSON Lines.
"""

from __future__ import annotations

import io
import json
from typing import Any

import jsonlines
import pandas as pd

from migrate.failures_index import file_rows, refuse
from migrate.parallel import map_files
from migrate.queues import load_queue_docs, name_index
from migrate.reader import Problem
from migrate.store import Store

#: The exported columns, in order.
COLUMNS = (
    "file",
    "line",
    "position",
    "package_id",
    "ecosystem",
    "name",
    "scope",
    "platform",
    "category",
    "category_legacy",
    "reclassified_from",
    "exit_code",
    "blocked_by",
    "evidence_sources",
    "timestamp",
    "run",
    "schema_version",
    "message",
)


def export_frame(repo: Store, jobs: int = 1) -> pd.DataFrame:
    """One row per record of every failure file (raises BadInputError naming the lines
    that are not failure lines)."""
    names = name_index(load_queue_docs(repo))
    rels = repo.failure_rels()
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for found, probs in map_files(
        lambda rel: file_rows(rel, repo.read_bytes(rel), names.get, want=None), rels, jobs
    ):
        rows.extend(found)
        problems.extend(probs)
    refuse(problems, "nothing was exported")
    for row in rows:
        row["evidence_sources"] = list(dict.fromkeys(ev["source"] for ev in row["evidence"]))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"exit_code": "Int64"})


def to_csv(frame: pd.DataFrame) -> str:
    """CSV; list cells as JSON (``["a","b"]``, ``[]``), an unknown ``blocked_by`` empty."""
    out = frame.copy()
    for col in ("blocked_by", "evidence_sources"):
        out[col] = out[col].map(lambda v: json.dumps(v) if isinstance(v, list) else None)
    return out.to_csv(index=False)


def to_jsonl(frame: pd.DataFrame) -> str:
    """JSON Lines, one record per line; an unknown ``blocked_by`` is null."""
    out = io.StringIO()
    with jsonlines.Writer(out, dumps=_compact) as writer:
        writer.write_all(frame.astype(object).where(frame.notna(), None).to_dict("records"))
    return out.getvalue()


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
