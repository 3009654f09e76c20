"""Step 0003 queue-status: statuses recomputed independently with pandas and compared."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from freezegun import freeze_time

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import BadInputError
from migrate.repo import DataRepo
from migrate.steps.base import RunOptions
from tests.conftest import copy_repo, corpus_snapshot
from tests.helpers import records, snapshot

FIXED = {"success", "excluded", "requires_manual", "skipped"}


def load_queue(path):
    doc = json.loads(path.read_text())
    key = "packages" if "packages" in doc else "entries"
    df = pd.DataFrame(doc[key])
    df["pid"] = df["id"] if key == "packages" else df["source"]
    return doc, df


def failures_frame(root):
    return pd.DataFrame(records(root))


def expected_statuses(queue_before: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """The design's rules, written a second time, column-wise with pandas."""
    pkg = failures[(failures["scope"] == "package") & failures["package_id"].notna()].copy()
    ts = pkg["timestamp"].str.rstrip("Z").str.split(".", n=1, expand=True)
    pkg["key"] = ts[0] + (ts[1].fillna("") if 1 in ts else "").str.ljust(9, "0")
    latest = pkg.sort_values("key", kind="stable").groupby("package_id").tail(1)
    latest = latest.set_index("package_id")[["category", "blocked_by"]]
    q = queue_before.join(latest, on="pid")
    success = set(queue_before.loc[queue_before["status"] == "success", "name"])
    out_status, out_bb = [], []
    for status, cat, bb in zip(q["status"], q["category"], q["blocked_by"], strict=True):
        bb = bb if isinstance(bb, list) else None
        if status in FIXED or not isinstance(cat, str):
            out_status.append(status)
            out_bb.append(None)
        elif bb or cat == "missing_dep":
            unresolved = [n for n in (bb or []) if n not in success]
            if not bb or unresolved:
                out_status.append("blocked")
                out_bb.append(unresolved or None)
            else:
                out_status.append("pending" if status == "blocked" else status)
                out_bb.append(None)
        else:
            out_status.append("failed" if status == "blocked" else status)
            out_bb.append(None)
    return pd.DataFrame({"pid": q["pid"], "status": out_status, "blocked_by": out_bb})


def queue_files(root):
    return [p for p in sorted((root / "data").rglob("*.json")) if "priority-queue" in p.name]


def assert_queue_matches_recount(root, befores):
    failures = failures_frame(root)
    for path in queue_files(root):
        doc, after = load_queue(path)
        assert doc["schema_version"] == 2
        expect = expected_statuses(befores[path.name], failures)
        assert list(after["pid"]) == list(expect["pid"])  # same entries, same order
        assert list(after["status"]) == list(expect["status"]), path.name
        key = "packages" if "packages" in doc else "entries"
        for entry, bb in zip(doc[key], expect["blocked_by"], strict=True):
            if entry["status"] == "blocked":
                assert entry["blocked_by"] == bb, entry
            else:
                assert "blocked_by" not in entry, entry


@pytest.mark.parametrize("snapshot_name", ["2026-02-08", "2026-03-02"])
def test_real_snapshots_match_an_independent_recount(tmp_path, snapshot_name):
    root = copy_repo(corpus_snapshot(snapshot_name), tmp_path)
    repo = DataRepo(root)
    original = snapshot(root)
    befores = {p.name: load_queue(p)[1] for p in queue_files(root)}
    engine.up(repo)
    assert check_repo(repo).ok
    assert_queue_matches_recount(root, befores)
    for path in queue_files(root):
        _, after = load_queue(path)
        before = befores[path.name]
        fixed = before["status"].isin(FIXED)
        assert (after.loc[fixed, "status"] == before.loc[fixed, "status"]).all()
        for col in ("failure_count", "next_retry_at"):
            if col in before:
                assert after[col].equals(before[col])
    # the mission's cases
    _, legacy = load_queue(root / "data" / "queues" / "priority-queue-homebrew.json")
    by = legacy.set_index("pid")
    for pid in ["homebrew:node", "homebrew:ffmpeg", "homebrew:coreutils", "homebrew:imagemagick"]:
        if snapshot_name == "2026-02-08" or pid != "homebrew:ffmpeg":
            assert by.loc[pid, "status"] == "blocked", pid
    run = engine.up(repo)
    assert run.plan.steps == ()
    engine.down(repo, "base")
    assert snapshot(root) == original


def test_jan_31_cases_from_the_design(fixture_repo):
    root = fixture_repo("early-layout")
    engine.up(DataRepo(root))
    doc = json.loads((root / "data" / "priority-queue.json").read_text())
    st = {p["id"]: (p["status"], p.get("blocked_by")) for p in doc["packages"]}
    assert st["homebrew:node"] == ("blocked", ["ada-url"])
    assert st["homebrew:ffmpeg"] == ("blocked", ["dav1d"])
    assert st["homebrew:imagemagick"] == ("blocked", ["glib"])
    assert st["homebrew:coreutils"] == ("blocked", ["gmp"])
    for name in ["awscli", "gh", "uv", "gemini-cli", "pyenv", "xcbeautify"]:
        assert st[f"homebrew:{name}"] == ("failed", None), name


@freeze_time("2026-05-05 10:00:00")
def test_rules_on_the_anomalies_fixture(fixture_repo):
    root = fixture_repo("anomalies")
    befores = {p.name: load_queue(p)[1] for p in queue_files(root)}
    run = engine.up(DataRepo(root))
    assert_queue_matches_recount(root, befores)
    doc = json.loads((root / "data" / "queues" / "priority-queue.json").read_text())
    st = {e["source"]: e for e in doc["entries"]}
    assert doc["updated_at"] == "2026-05-05T10:00:00Z"  # moved: entries changed
    assert st["homebrew:tmux"]["status"] == "pending"  # its only blocker has a success entry
    assert st["homebrew:exa"]["status"] == "failed"  # true not-found, was blocked
    assert st["crates.io:bitcoin"]["status"] == "excluded"
    notes = [n for s in run.steps for n in s.notes]
    assert any("homebrew:tmux blocked -> pending" in n and "now has a recipe" in n for n in notes)


def test_recipes_tree_resolves_blockers(fixture_repo, tmp_path):
    root = fixture_repo("early-layout")
    recipes = tmp_path / "recipes"
    (recipes / "a").mkdir(parents=True)
    (recipes / "a" / "ada-url.toml").write_text('[metadata]\nname = "ada-url"\n')
    (recipes / "g").mkdir()
    (recipes / "g" / "glib2.toml").write_text(
        '[metadata]\nname = "glib2"\n\n[metadata.satisfies]\nhomebrew = ["glib"]\n'
    )
    engine.up(DataRepo(root), options=RunOptions(recipes=str(recipes)))
    doc = json.loads((root / "data" / "priority-queue.json").read_text())
    st = {p["id"]: p["status"] for p in doc["packages"]}
    assert st["homebrew:node"] == "pending" and st["homebrew:imagemagick"] == "pending"
    assert st["homebrew:ffmpeg"] == "blocked"


def test_updated_at_stays_when_nothing_changed(fixture_repo):
    root = fixture_repo("early-layout")
    q = root / "data" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["packages"] = [p for p in doc["packages"] if p["status"] == "pending"]
    q.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    engine.up(DataRepo(root))
    after = json.loads(q.read_text())
    assert after["updated_at"] == doc["updated_at"] and after["schema_version"] == 2


def test_generated_status_is_refused_with_the_line(fixture_repo):
    root = fixture_repo("generated-status")
    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(DataRepo(root))
    where = "data/queues/priority-queue.json:29: entries[2].status: status 'generated'"
    assert exc.value.problems[0].startswith(where)  # (the status's line, not the entry's)
    assert snapshot(root) == before
    # CI's gate says so before `up` does (it passed this queue, then `up` refused it)
    assert [str(p) for p in check_repo(DataRepo(root)).problems][0].startswith(where)
    assert main(["check", "--repo", str(root), "-q"]) == 1


def test_explain_shows_records_blockers_evidence_and_rule(fixture_repo, capsys):
    root = fixture_repo("sample")
    engine.up(DataRepo(root))
    assert main(["explain", "--repo", str(root), "homebrew:node", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (q,) = [q for q in doc["queues"] if q["file"] == "data/queues/priority-queue.json"]
    assert q["status"] == "blocked" and q["rebuild_agrees"] is True
    assert "names blockers" in q["rule"]
    assert [b["name"] for b in q["blockers"] if not b["resolved"]] == q["blocked_by"]
    assert {b["name"]: b["queue_status"] for b in q["blockers"]}["libuv"] == ["success"]
    ts = [r["timestamp"] for r in doc["records"]]
    assert ts == sorted(ts, reverse=True) and len(ts) == 3
    assert doc["records"][0]["evidence"] == []  # the March record states its own blockers
    assert doc["records"][1]["evidence"][0]["source"] == "message"
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0
    text = capsys.readouterr().out
    assert "rule: latest failure" in text and "evidence message: ada-url <- Error" in text
    assert main(["explain", "--repo", str(root), "homebrew:nope"]) == 2


def test_explain_lists_the_records_at_any_version(fixture_repo, capsys):
    """Below 0002 `explain` listed no record (it read only v2 lines) while its rule line
    cited one; and said "repo at None" at base."""
    root = fixture_repo("sample")
    at = {}
    for target in (None, "0001", "head"):
        if target:
            engine.up(DataRepo(root), target)
        assert main(["explain", "--repo", str(root), "homebrew:node", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        at[target] = [(r["file"], r["line"]) for r in doc["records"]]
    assert at[None] and at[None] == at["0001"] == at["head"]
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0  # (text)
    out = capsys.readouterr().out
    assert "(repo at 0003)" in out and "not backfilled yet" not in out
    engine.down(DataRepo(root), "base")
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0
    assert "records not backfilled yet" in capsys.readouterr().out
