"""Reports: counts recounted from the queue file, blockers recounted by separate code."""

from __future__ import annotations

import json
import re
from collections import Counter
from io import StringIO

import pandas as pd
import pytest

from migrate import engine
from migrate.cli import main
from migrate.html_report import render
from migrate.report import build_report, rank_blockers
from migrate.store import Store
from tests.conftest import copy_repo, corpus_snapshot
from tests.helpers import CHROMIUM, headless_dom
from tests.test_step_0003 import by_name


def frame(entries):
    return pd.DataFrame(
        [
            {
                "package_id": f"homebrew:{n}",
                "name": n,
                "status": s,
                "blocked_by": b,
                "ecosystem": "homebrew",
                "priority": 1,
                "queue": "q",
            }
            for n, s, b in entries
        ]
    )


def recount_totals(entries):
    """Separate code: fixed-point closure over 'X blocks Y' edges, counted per blocker."""
    blocks = {}
    for name, status, bb in entries:
        if status == "blocked" and bb:
            for b in bb:
                blocks.setdefault(b, set()).add(name)
    out = {}
    for b in blocks:
        reach = set(blocks[b])
        while True:
            more = set().union(*(blocks.get(n, set()) for n in reach)) - reach
            if not more:
                break
            reach |= more
        reach.discard(b)
        out[b] = (len(blocks[b]), len(reach))
    return out


def test_diamonds_count_once_and_cycles_terminate():
    entries = [
        ("a", "blocked", ["x"]),
        ("b", "blocked", ["x"]),
        ("c", "blocked", ["a", "b"]),
        ("d", "blocked", ["c"]),
        ("p", "blocked", ["q"]),
        ("q", "blocked", ["p"]),
        ("e", "blocked", None),
        ("f", "pending", None),
        ("x", "pending", None),
    ]
    ranked = rank_blockers(frame(entries))
    got = {b["name"]: (b["direct_count"], b["total_count"]) for b in ranked}
    assert got == recount_totals(entries)
    assert got["x"] == (2, 4)  # a, b directly; c once (diamond), d through c
    assert got["p"] == (1, 1) and got["q"] == (1, 1)  # the cycle ends; nobody unblocks itself
    assert [b["name"] for b in ranked][:2] == ["x", "a"]  # total, then direct, then name
    x = ranked[0]
    assert x["packages"] == ["homebrew:a", "homebrew:b"]
    assert x["transitive_packages"] == ["homebrew:c", "homebrew:d"]


@pytest.fixture(params=["2026-02-08", "2026-03-02"])
def migrated_corpus(request, tmp_path):
    root = copy_repo(corpus_snapshot(request.param), tmp_path)
    engine.up(Store(root))
    return root


def test_report_matches_a_direct_recount_of_the_queue(migrated_corpus, capsys):
    root = migrated_corpus
    r = build_report(Store(root))
    (qrel,) = r.queues
    doc = json.loads((root / qrel).read_text())
    entries = doc.get("entries", doc.get("packages"))
    assert r.by_status == dict(Counter(e["status"] for e in entries))
    assert r.entries == len(entries)
    # blockers come from the records (the queue keeps none): per blocked entry, the
    # unresolved names over every record of its name (counted by tests/test_step_0003)
    names = by_name(root)
    success = {e["name"] for e in entries if e["status"] == "success"}

    def unresolved(e):
        if e["status"] != "blocked" or e["name"] not in names.index:
            return None
        return [b for b in names.loc[e["name"], "blockers"] if b not in success] or None

    expect = recount_totals([(e["name"], e["status"], unresolved(e)) for e in entries])
    assert {b["name"]: (b["direct_count"], b["total_count"]) for b in r.blockers} == expect
    assert r.blockers, "the real snapshots have blocked packages"
    assert main(["report", "--repo", str(root), "--format", "json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["by_status"] == r.by_status
    assert set(j["blockers"][0]) >= {"name", "direct_count", "total_count", "packages"}
    assert main(["report", "--repo", str(root), "--format", "dashboard"]) == 0
    dash = json.loads(capsys.readouterr().out)
    b0 = dash["blockers"][0]
    assert set(b0) == {"name", "count", "direct_count", "total_count", "packages"}
    assert b0["count"] == b0["total_count"] == r.blockers[0]["total_count"]
    assert main(["report", "--repo", str(root), "--format", "csv"]) == 0
    csv = pd.read_csv(StringIO(capsys.readouterr().out))
    assert list(csv["name"]) == [b["name"] for b in r.blockers]
    assert main(["report", "--repo", str(root)]) == 0
    text = capsys.readouterr().out
    assert f"top blockers (of {len(r.blockers)})" in text and r.blockers[0]["name"] in text


def test_report_needs_a_migrated_repo(fixture_repo, capsys):
    assert main(["report", "--repo", str(fixture_repo("sample"))]) == 2
    assert "run `migrate up` first" in capsys.readouterr().err


def hostile_repo(fixture_repo):
    root = fixture_repo("sample")
    engine.up(Store(root))
    q = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_text())
    evil = "<script>alert(1)</script>"
    victims = []
    for n in range(3):
        doc["entries"].append(
            {
                **doc["entries"][0],
                "name": f"victim{n}&co",
                "source": f"homebrew:victim{n}&co",
                "status": "blocked",
            }
        )
        victims.append(
            {
                "package_id": f"homebrew:victim{n}&co",
                "category": "missing_dep",
                "blocked_by": [evil],
                "message": "",
                "timestamp": "2026-03-09T00:00:00Z",
            }
        )
    line = {
        "schema_version": 2,
        "ecosystem": "homebrew",
        "environment": "linux-glibc-x86_64",
        "updated_at": "2026-03-09T00-00-00Z",
        "failures": victims,
    }
    f = root / "data" / "failures" / "homebrew-2026-03-09T00-00-00Z.jsonl"
    f.write_text(json.dumps(line) + "\n")
    doc["entries"].append(
        {**doc["entries"][0], "name": evil, "source": "homebrew:x&y", "status": "pending"}
    )
    q.write_text(json.dumps(doc, indent=2))
    return root, evil


def test_html_escapes_every_value_from_data(fixture_repo):
    root, evil = hostile_repo(fixture_repo)
    page = render(build_report(Store(root)))
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "homebrew:victim0&amp;co" in page and "victim0&co" not in page
    assert "http://" not in page and "https://" not in page  # self-contained


@pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (apt-get install chromium)")
def test_html_report_in_a_real_headless_browser(fixture_repo, tmp_path):
    root, evil = hostile_repo(fixture_repo)
    out = tmp_path / "report.html"
    assert main(["report", "--repo", str(root), "--format", "html", "--out", str(out)]) == 0
    proc = headless_dom(out, tmp_path / "profile")
    dom = proc.stdout
    assert 'data-ready="1"' in dom, proc.stderr[-2000:]  # the page's script ran to the end
    assert not re.search(r"<html[^>]*data-errors", dom)  # no script error on the page
    assert f'<strong id="top-blocker">{evil.replace("<", "&lt;").replace(">", "&gt;")}' in dom
    assert "<script>alert(1)</script>" not in dom
