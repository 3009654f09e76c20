"""What tsuku's own readers see, before and after `migrate up` (formats.md section 7).

``dashboard_view`` reads a data repo by exactly the rules of tsuku's dashboard generator
(``internal/dashboard``, also ``queue-analytics``): a line that does not decode is skipped
silently; a line with a non-empty ``failures`` array is an envelope, a line with a
non-empty ``recipe`` and ``category`` a per-recipe line, any other line contributes
nothing; unknown keys are ignored; legacy category names are remapped; the blockers shown
are, for each blocked queue entry, the ``blocked_by`` of the last record read for its
package id (files in name order, lines in order; a per-recipe line's package id there is
its ``ecosystem``, else homebrew). The dashboard reads the unified queue;
where a snapshot has none (Feb 8), the legacy queue stands in for it, so that its
blockers are compared too.

v2 keeps every line's shape and place, so after `up` this reader must see the same
failures, each with the same details, categories differing only where the backfill
reclassified a record to ``missing_dep`` and package ids only where a per-recipe line's
ecosystem was proven, and every blocker it saw before whose package is still blocked.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from migrate import engine
from migrate.check import check_repo
from migrate.steps.base import RunOptions
from migrate.store import Store
from tests.conftest import FIXTURES, SNAPSHOTS, copy_repo, corpus_snapshot
from tests.helpers import snapshot

REMAP = {
    "api_error": "network_error",
    "validation_failed": "install_failed",
    "deterministic_insufficient": "generation_failed",
    "deterministic": "generation_failed",
    "timeout": "network_error",
    "network": "network_error",
}


def _cut(message: str | None) -> str | None:
    if message is None:
        return None
    data = message.encode("utf-8")
    return data[:500].decode("utf-8", "ignore") if len(data) > 500 else message


def dashboard_view(root: Path) -> dict:
    """Failure details keyed by (file, line, position), counts by category, and the
    blocker pairs of blocked queue entries, as tsuku's dashboard generator reads them."""
    details: dict[tuple[str, int, int], dict] = {}
    last_blocked_by: dict[str, list[str] | None] = {}
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        prefix = f.name.removesuffix(".jsonl").split("-", 1)[0]
        for lineno, text in enumerate(f.read_text(encoding="utf-8").split("\n"), 1):
            try:
                line = json.loads(text)
            except ValueError:
                continue  # skipped silently, blank lines included
            if not isinstance(line, dict):
                continue
            if isinstance(line.get("failures"), list) and line["failures"]:
                eco = line.get("ecosystem") or prefix
                for pos, item in enumerate(line["failures"]):
                    pid = item.get("package_id") or ""
                    details[(f.name, lineno, pos)] = {
                        "package_id": pid,
                        "ecosystem": eco,
                        "category": REMAP.get(item.get("category"), item.get("category")),
                        "subcategory": item.get("subcategory") or "",
                        "blocked_by": item.get("blocked_by") or [],
                        "message": _cut(item.get("message")),
                        "timestamp": item.get("timestamp"),
                        "workflow_url": item.get("workflow_url") or "",
                    }
                    last_blocked_by[pid] = item.get("blocked_by")
            elif line.get("recipe") and line.get("category"):
                eco = line.get("ecosystem") or prefix or "unknown"
                pid = f"{eco}:{line['recipe']}"
                # for blockers, a per-recipe line's package falls back to homebrew
                blocker_pid = f"{line.get('ecosystem') or 'homebrew'}:{line['recipe']}"
                details[(f.name, lineno, 0)] = {
                    "package_id": pid,
                    "platform": line.get("platform"),
                    "category": REMAP.get(line["category"], line["category"]),
                    "subcategory": line.get("subcategory") or "",
                    "exit_code": line.get("exit_code"),
                    "blocked_by": line.get("blocked_by") or [],
                    "message": _cut(line.get("message")),
                    "timestamp": line.get("timestamp") or line.get("updated_at"),
                    "workflow_url": line.get("workflow_url") or "",
                }
                last_blocked_by[blocker_pid] = line.get("blocked_by")
    pairs = set()
    blocked = set()
    for entry in _queue_entries(root):
        if entry["status"] == "blocked":
            pid = entry.get("source") if "priority" in entry else entry["id"]
            blocked.add(pid)
            pairs |= {(pid, name) for name in last_blocked_by.get(pid) or []}
    return {
        "details": details,
        "by_category": Counter(d["category"] for d in details.values()),
        "blocked": blocked,
        "pairs": pairs,
    }


def _queue_entries(root: Path) -> list[dict]:
    unified = root / "data" / "queues" / "priority-queue.json"
    if unified.exists():
        return json.loads(unified.read_text())["entries"]
    out = []
    for path in sorted((root / "data").rglob("priority-queue*.json")):
        out.extend(json.loads(path.read_text())["packages"])
    return out


def _v2_records(root: Path) -> dict[tuple[str, int, int], dict]:
    out = {}
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        for lineno, text in enumerate(f.read_text(encoding="utf-8").split("\n"), 1):
            if text.strip():
                line = json.loads(text)
                for pos, rec in enumerate(line.get("failures", [line])):
                    out[(f.name, lineno, pos)] = rec
    return out


def assert_reader_sees_the_same_and_more(root: Path, **options) -> tuple[dict, dict]:
    before = dashboard_view(root)
    engine.up(Store(root), options=RunOptions(**options))
    after = dashboard_view(root)
    v2 = _v2_records(root)
    assert after["details"].keys() == before["details"].keys()  # same failures, same places
    assert sum(after["by_category"].values()) == sum(before["by_category"].values())
    for key, b in before["details"].items():
        a = dict(after["details"][key])
        rec = v2[key]
        if a["category"] != b["category"]:
            assert a["category"] == "missing_dep" and "reclassified_from" in rec, key
        if a["package_id"] != b["package_id"]:  # a per-recipe line's ecosystem, proven
            assert "recipe" in rec and rec["ecosystem"], key
            assert a["package_id"] == f"{rec['ecosystem']}:{rec['recipe']}"
        assert set(b["blocked_by"]) <= set(a["blocked_by"]), key
        same = {k for k in b if k not in ("category", "package_id", "blocked_by")}
        assert {k: a[k] for k in same} == {k: b[k] for k in same}, key
    still = {p for p in before["pairs"] if p[0] in after["blocked"]}
    assert still <= after["pairs"]
    return before, after


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_tsukus_dashboard_reads_the_migrated_snapshot(tmp_path, name):
    root = copy_repo(corpus_snapshot(name), tmp_path)
    before, after = assert_reader_sees_the_same_and_more(root)
    assert after["pairs"] > before["pairs"]  # the backfill's blockers reach the dashboard
    assert after["by_category"]["missing_dep"] > before["by_category"]["missing_dep"]


@pytest.mark.parametrize("name", ["sample", "anomalies", "early-layout"])
def test_tsukus_dashboard_reads_the_migrated_fixture(tmp_path, name):
    root = copy_repo(FIXTURES / name, tmp_path)
    assert_reader_sees_the_same_and_more(root)


def test_tsukus_dashboard_sees_what_ci_evidence_adds(tmp_path):
    root = copy_repo(FIXTURES / "sample", tmp_path)
    before, after = assert_reader_sees_the_same_and_more(
        root, evidence=(str(FIXTURES / "evidence"),)
    )
    recipe_lines = [k for k, d in after["details"].items() if "platform" in d and d["blocked_by"]]
    assert recipe_lines  # validation results reached per-recipe lines


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_every_line_keeps_its_shape_and_place(tmp_path, name):
    """After `up`: the same number of lines per file, each envelope still an envelope with
    the same records in the same order, each per-recipe line still a per-recipe line;
    `check` clean; `down --to base` gives back every byte."""
    root = copy_repo(corpus_snapshot(name), tmp_path)
    original = snapshot(root)

    def shapes(data: bytes):
        out = []
        for text in data.decode("utf-8").split("\n"):
            line = json.loads(text) if text.strip() else None
            if line is None:
                out.append(None)
            elif "failures" in line:
                out.append(("envelope", [i["package_id"] for i in line["failures"]]))
            else:
                out.append(("recipe", line["recipe"], line["platform"], line["timestamp"]))
        return out

    repo = Store(root)
    engine.up(repo)
    assert check_repo(repo).ok
    migrated = snapshot(root)
    failures = [k for k in original if k.startswith("data/failures/")]
    assert failures
    for rel in failures:
        assert shapes(migrated[rel]) == shapes(original[rel]), rel
    engine.down(repo, "base")
    assert snapshot(root) == original
