"""Step 0003 queue-status: statuses recomputed independently with pandas and compared.

The recount is tsuku's queue rules (formats.md section 7) written a second time, over
the records as tests/helpers.records reads them: per bare name, the union of blockers
over every record and whether a missing_dep record names blockers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from freezegun import freeze_time

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import BadInputError
from migrate.steps.base import RunOptions
from migrate.store import Store
from tests.conftest import copy_repo, corpus_snapshot
from tests.helpers import records, snapshot

FIXED = {"success", "excluded", "requires_manual", "skipped"}


def load_queue(path):
    doc = json.loads(path.read_text())
    key = "packages" if "packages" in doc else "entries"
    df = pd.DataFrame(doc[key])
    df["pid"] = df["id"] if key == "packages" else df["source"]
    return doc, df


def by_name(root) -> pd.DataFrame:
    """Per bare name: records counted, blockers over all of them, a missing_dep naming some."""
    rec = pd.DataFrame(records(root))
    rec = rec[(rec["scope"] == "package") | rec["category"].fillna("").astype(bool)].copy()
    rec["bare"] = rec["name"]
    rec["names"] = rec["blocked_by"].map(lambda b: b if isinstance(b, list) else [])
    rec["missing"] = (rec["category"] == "missing_dep") & rec["names"].map(bool)

    def union(lists):
        out = []
        for names in lists:
            out += [n for n in names if n not in out]
        return out

    return rec.groupby("bare", sort=False).agg(
        count=("bare", "size"), blockers=("names", union), missing=("missing", "any")
    )


def expected_statuses(before: pd.DataFrame, names: pd.DataFrame, unified: bool) -> list[str]:
    success = set(before.loc[before["status"] == "success", "name"])
    out = []
    for e in before.to_dict("records"):
        status = e["status"]
        if status in FIXED or e["name"] not in names.index:
            out.append(status)
            continue
        n = names.loc[e["name"]]
        unresolved = [b for b in n["blockers"] if b not in success]
        if status == "blocked":
            requeue = n["blockers"] and not unresolved
            if requeue and unified and n["count"] > e["failure_count"] and not n["missing"]:
                requeue = False  # (queue-maintain would mark it failed at once)
            out.append("pending" if requeue else "blocked")
        else:
            out.append("blocked" if n["missing"] and unresolved else status)
    return out


def queue_files(root):
    return [p for p in sorted((root / "data").rglob("*.json")) if "priority-queue" in p.name]


def assert_queue_matches_recount(root, befores):
    names = by_name(root)
    for path in queue_files(root):
        doc, after = load_queue(path)
        before_doc, before = befores[path.name]
        unified = "entries" in doc
        assert list(after["pid"]) == list(before["pid"])  # same entries, same order
        expected = expected_statuses(before, names, unified)
        assert list(after["status"]) == expected, path.name
        # (migrate's mark where it changed a status: tsuku's struct keeps it as read)
        moved = expected != list(before["status"])
        assert doc["schema_version"] == (2 if moved else before_doc["schema_version"])
        key = "entries" if unified else "packages"
        assert not any("blocked_by" in e for e in doc[key])  # (the writer's struct has none)
        for col in ("failure_count", "next_retry_at", "priority", "confidence", "tier"):
            if col in before:
                assert after[col].equals(before[col])


@pytest.mark.parametrize("snapshot_name", ["2026-02-08", "2026-03-02"])
def test_real_snapshots_match_an_independent_recount(tmp_path, snapshot_name):
    root = copy_repo(corpus_snapshot(snapshot_name), tmp_path)
    repo = Store(root)
    original = snapshot(root)
    befores = {p.name: load_queue(p) for p in queue_files(root)}
    engine.up(repo)
    assert check_repo(repo).ok
    assert_queue_matches_recount(root, befores)
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
    engine.up(Store(root))
    doc = json.loads((root / "data" / "priority-queue.json").read_text())
    st = {p["id"]: p["status"] for p in doc["packages"]}
    for name in ["node", "ffmpeg", "imagemagick", "coreutils"]:
        assert st[f"homebrew:{name}"] == "blocked", name
    for name in ["awscli", "gh", "uv", "gemini-cli", "pyenv", "xcbeautify"]:
        assert st[f"homebrew:{name}"] == "failed", name
    from migrate.explain import explain

    q = explain(Store(root), "homebrew:node")["queues"][0]
    assert [b["name"] for b in q["blockers"]] == ["ada-url"]  # (from the records)


@freeze_time("2026-05-05 10:00:00")
def test_rules_on_the_anomalies_fixture(fixture_repo):
    root = fixture_repo("anomalies")
    befores = {p.name: load_queue(p) for p in queue_files(root)}
    run = engine.up(Store(root))
    assert_queue_matches_recount(root, befores)
    doc = json.loads((root / "data" / "queues" / "priority-queue.json").read_text())
    st = {e["source"]: e for e in doc["entries"]}
    assert doc["updated_at"] == "2026-05-05T10:00:00Z"  # moved: entries changed
    assert st["homebrew:tmux"]["status"] == "pending"  # its only blocker has a success entry
    # a true not-found names no blocker: tsuku keeps a blocked entry blocked; migrate's own
    # judgement (failed) is a finding, not a status it writes
    assert st["homebrew:exa"]["status"] == "blocked"
    (f,) = [f for f in check_repo(Store(root)).notes if "homebrew:exa" in f.reason]
    assert "no recorded blocker" in f.field and "judgement: not blocked" in f.reason
    assert st["crates.io:bitcoin"]["status"] == "excluded"
    notes = [n for s in run.steps for n in s.notes]
    assert any("homebrew:tmux blocked -> pending" in n and "requeued" in n for n in notes)


def test_recipes_tree_resolves_blockers(fixture_repo, tmp_path):
    from migrate.explain import explain

    root = fixture_repo("early-layout")
    recipes = tmp_path / "recipes"
    (recipes / "a").mkdir(parents=True)
    (recipes / "a" / "ada-url.toml").write_text('[metadata]\nname = "ada-url"\n')
    (recipes / "g").mkdir()
    (recipes / "g" / "glib2.toml").write_text(
        '[metadata]\nname = "glib2"\n\n[metadata.satisfies]\nhomebrew = ["glib"]\n'
    )
    engine.up(Store(root), options=RunOptions(recipes=str(recipes)))
    doc = json.loads((root / "data" / "priority-queue.json").read_text())
    st = {p["id"]: p["status"] for p in doc["packages"]}
    # ada-url.toml: tsuku's reconcile marks the ada-url entry success, so requeue frees node
    assert st["homebrew:node"] == "pending"
    assert st["homebrew:ffmpeg"] == "blocked"
    # glib is provided by glib2.toml's satisfies: tsuku's requeue never reads that, so
    # imagemagick stays blocked and the difference is a finding
    assert st["homebrew:imagemagick"] == "blocked"
    (q,) = explain(Store(root), "homebrew:imagemagick", recipes=str(recipes))["queues"]
    assert q["judgement"]["status"] == "not blocked" and "satisfies" in q["differs"]


def test_updated_at_stays_when_nothing_changed(fixture_repo):
    root = fixture_repo("early-layout")
    q = root / "data" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["packages"] = [p for p in doc["packages"] if p["status"] == "pending"]
    q.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    before = q.read_bytes()
    engine.up(Store(root))
    assert q.read_bytes() == before  # (nothing to change: not even updated_at)


def test_generated_status_is_refused_with_the_line(fixture_repo):
    root = fixture_repo("generated-status")
    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(Store(root))
    where = "data/queues/priority-queue.json:29: entries[2].status: status 'generated'"
    assert exc.value.problems[0].startswith(where)  # (the status's line, not the entry's)
    assert snapshot(root) == before
    # CI's gate says so before `up` does (it passed this queue, then `up` refused it)
    assert [str(p) for p in check_repo(Store(root)).problems][0].startswith(where)
    assert main(["check", "--repo", str(root), "-q"]) == 1


def test_explain_shows_records_blockers_evidence_and_rule(fixture_repo, capsys):
    root = fixture_repo("sample")
    engine.up(Store(root))
    assert main(["explain", "--repo", str(root), "homebrew:node", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (q,) = [q for q in doc["queues"] if q["file"] == "data/queues/priority-queue.json"]
    assert q["status"] == "blocked" == q["derived"]
    assert "unresolved" in q["rule"]
    assert {b["name"]: b["queue_status"] for b in q["blockers"]}["libuv"] == ["success"]
    assert all(b["name"] in q["rule"] for b in q["blockers"] if not b["resolved"])
    ts = [r["timestamp"] for r in doc["records"]]
    assert ts == sorted(ts, reverse=True) and len(ts) == 3
    assert doc["records"][0]["evidence"] == []  # the March record states its own blockers
    assert doc["records"][1]["evidence"][0]["source"] == "message"
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0
    text = capsys.readouterr().out
    assert "tsuku's rules: blockers over all its records" in text
    assert "evidence message: ada-url <- Error" in text
    assert main(["explain", "--repo", str(root), "homebrew:nope"]) == 2


def test_explain_lists_the_records_at_any_version(fixture_repo, capsys):
    """Below 0002 `explain` listed no record (it read only v2 lines) while its rule line
    cited one; and said "repo at None" at base."""
    root = fixture_repo("sample")
    at = {}
    for target in (None, "0001", "head"):
        if target:
            engine.up(Store(root), target)
        assert main(["explain", "--repo", str(root), "homebrew:node", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        at[target] = [(r["file"], r["line"]) for r in doc["records"]]
    assert at[None] and at[None] == at["0001"] == at["head"]
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0  # (text)
    out = capsys.readouterr().out
    assert "(repo at 0003)" in out and "not backfilled yet" not in out
    engine.down(Store(root), "base")
    assert main(["explain", "--repo", str(root), "homebrew:node"]) == 0
    assert "records not backfilled yet" in capsys.readouterr().out
