"""`migrate export`: every record flat, one row each, at any version."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from migrate import engine
from migrate.cli import main
from migrate.steps.base import RunOptions
from migrate.store import Store
from tests.conftest import FIXTURES
from tests.helpers import records


def _export(root, fmt, capsys):
    assert main(["export", "--repo", str(root), "--format", fmt]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_one_row_per_record_in_file_and_line_order(fixture_repo, capsys, fmt):
    root = fixture_repo("sample")
    engine.up(Store(root), options=RunOptions(evidence=(str(FIXTURES / "evidence"),)))
    text = _export(root, fmt, capsys)
    if fmt == "csv":
        frame = pd.read_csv(io.StringIO(text), keep_default_na=False)
        rows = frame.to_dict("records")
        blocked = [json.loads(r["blocked_by"]) if r["blocked_by"] else None for r in rows]
        sources = [json.loads(r["evidence_sources"]) for r in rows]
    else:
        rows = [json.loads(line) for line in text.splitlines()]
        blocked = [r["blocked_by"] for r in rows]
        sources = [r["evidence_sources"] for r in rows]
    expect = records(root)
    assert len(rows) == len(expect) == 75
    for row, rec, bb, src in zip(rows, expect, blocked, sources, strict=True):
        assert row["file"] == f"data/failures/{rec['file']}" and row["line"] == rec["line"]
        assert (row["scope"], row["name"], row["category"]) == (
            rec["scope"],
            rec["name"],
            rec["category"],
        )
        assert bb == rec["blocked_by"]  # a list, [] (known: none) or None (unknown)
        assert src == [ev["source"] for ev in rec.get("evidence", [])]
    positions = [(r["file"], r["line"], r["position"]) for r in rows]
    assert positions == sorted(positions)  # an envelope's records in order, one row each


def test_export_reads_v1_too_with_canonical_categories(capsys):
    text = _export(FIXTURES / "sample", "jsonl", capsys)
    rows = [json.loads(line) for line in text.splitlines()]
    assert {r["schema_version"] for r in rows} == {1}
    legacy = [r for r in rows if r["category_legacy"] == "validation_failed"]
    assert legacy and all(r["category"] == "install_failed" for r in legacy)


def test_export_to_a_file_and_bad_lines_are_named(fixture_repo, tmp_path, capsys):
    out = tmp_path / "records.csv"
    assert main(["export", "--repo", str(FIXTURES / "sample"), "--out", str(out)]) == 0
    assert f"wrote 75 records to {out}" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 75
    assert main(["export", "--repo", str(FIXTURES / "bad")]) == 2
    err = capsys.readouterr().err
    assert "data/failures/broken.jsonl:2: invalid JSON" in err and "Traceback" not in err
