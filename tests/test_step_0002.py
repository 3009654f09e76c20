"""Step 0002 backfill-blocked-by on real-shaped data: names with provenance, never a guess."""

from __future__ import annotations

import json
import re

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.steps.base import RunOptions
from migrate.store import Store
from tests.conftest import FIXTURES, copy_repo, corpus_snapshot
from tests.helpers import data_only, records, snapshot

EVIDENCE = str(FIXTURES / "evidence")


def find(root, package_id, run=None, platform=None):
    hits = [
        r
        for r in records(root)
        if (r["package_id"] == package_id or r["name"] == package_id)
        and (run is None or r["run"] == run)
        and (platform is None or r["platform"] == platform)
    ]
    assert hits, (package_id, run, platform)
    return hits


@pytest.fixture
def sample_with_evidence(fixture_repo):
    root = fixture_repo("sample")
    run = engine.up(Store(root), options=RunOptions(evidence=(EVIDENCE,)))
    return root, run


def test_message_names_are_backfilled_with_provenance(sample_with_evidence):
    root, _ = sample_with_evidence
    (node,) = find(root, "homebrew:node", run="2026-02-07T03-03-36Z")
    assert node["blocked_by"] == ["ada-url"]
    assert node["category"] == "missing_dep" and node["reclassified_from"] == "install_failed"
    assert node["category_legacy"] == "validation_failed"
    (ev,) = node["evidence"]
    assert ev["source"] == "message" and ev["names"] == ["ada-url"]
    assert ev["detail"] == "Error: registry: recipe ada-url not found in registry"
    assert ev["file"] == "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl" and ev["line"] == 1
    # the line keeps its place and shape: one envelope, the same record in it
    path = root / "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl"
    (line,) = path.read_text().splitlines()
    assert list(json.loads(line)) == [
        "schema_version",
        "ecosystem",
        "environment",
        "updated_at",
        "failures",
    ]
    assert list(node)[:7] == [
        "package_id",
        "category",
        "category_legacy",
        "reclassified_from",
        "blocked_by",
        "message",
        "timestamp",
    ]
    assert list(node)[7] == "evidence"


def test_records_that_only_mention_dependencies_gain_nothing(sample_with_evidence):
    root, _ = sample_with_evidence
    # gh: "Installing dependency: patchelf@0.18.0" only; exa: a true not-found
    for pid, run in [("homebrew:gh", "2026-01-31T18-00-45Z"), ("homebrew:exa", None)]:
        for rec in find(root, pid, run=run):
            if rec["scope"] == "package":
                assert rec["blocked_by"] is None
                assert "reclassified_from" not in rec and "evidence" not in rec


def test_record_own_names_kept_and_truncated_message_adds_nothing_wrong(sample_with_evidence):
    root, _ = sample_with_evidence
    # March node record: blocked_by lists 7 names, its cut message shows 5
    (node,) = find(root, "homebrew:node", run="2026-03-02T05-53-37Z")
    assert node["blocked_by"] == [
        "ada-url",
        "hdrhistogram_c",
        "icu4c@78",
        "libuv",
        "llhttp",
        "simdjson",
        "uvwasi",
    ]
    assert "evidence" not in node  # the record's own names: nothing backfilled
    assert node["message"].endswith("...")


def test_artifacts_fill_platform_lines_and_disagreements_take_the_union(sample_with_evidence):
    root, run = sample_with_evidence
    (apr,) = find(root, "apr-util", platform="linux-alpine-musl-x86_64")
    assert apr["blocked_by"] == ["apr"] and apr["category"] == "missing_dep"
    assert apr["evidence"][-1]["source"] == "validation_results"
    (apr_arm,) = find(root, "apr-util", platform="linux-alpine-musl-arm64")
    assert apr_arm["blocked_by"] is None  # exit 8, artifact names nobody: unknown
    (gitui,) = [r for r in find(root, "homebrew:gitui") if r["scope"] == "package"]
    assert gitui["blocked_by"] == ["openssl@3", "zlib-ng"]
    assert [e["source"] for e in gitui["evidence"]] == ["message", "install_json"]
    assert gitui["evidence"][1]["names"] == ["openssl@3", "zlib-ng"]
    step = run.steps[1]
    assert step.totals["records where sources disagree (union taken)"] == 1
    assert any("disagreement" in n and "homebrew:gitui" in n for n in step.notes)
    # the stamped install JSON applies to its run, not to the latest tmux record
    (tmux_feb,) = find(root, "homebrew:tmux", run="2026-02-08T02-33-27Z")
    assert tmux_feb["blocked_by"] == ["libevent"]
    (tmux_mar,) = find(root, "homebrew:tmux", run="2026-03-02T05-53-37Z")
    assert tmux_mar["blocked_by"] == ["utf8proc"]
    # a log section names what the record lost
    (awscli,) = find(root, "homebrew:awscli", run="2026-02-07T04-01-41Z")
    assert awscli["blocked_by"] == ["python@3.13"] and awscli["evidence"][0]["source"] == "log"
    # explicit "nothing missing" becomes [] with its source
    (pyenv,) = find(root, "homebrew:pyenv")
    assert pyenv["blocked_by"] == [] and pyenv["evidence"][0]["source"] == "install_json"
    assert any("evidence skipped" in n and "notes.txt" in n for n in step.notes)


def test_exit_8_lines_with_no_evidence_stay_unknown(sample_with_evidence):
    root, _ = sample_with_evidence
    for rec in find(root, "freetype") + find(root, "htop", platform="linux-alpine-musl-x86_64"):
        assert rec["exit_code"] == 8
        assert rec["blocked_by"] is None and rec["category"] == "missing_dep"
        assert rec["reclassified_from"] == "generation_failed"


def test_sibling_record_fills_an_exit_8_platform_line(tmp_path):
    env = {
        "schema_version": 1,
        "ecosystem": "homebrew",
        "environment": "linux-glibc-x86_64",
        "updated_at": "2026-02-07T03-03-36Z",
        "failures": [
            {
                "package_id": "homebrew:node",
                "category": "validation_failed",
                "message": "Error: registry: recipe ada-url not found in registry",
                "timestamp": "2026-02-07T03:03:36.69166035Z",
            }
        ],
    }
    later = {
        **env,
        "updated_at": "2026-02-09T00-00-00Z",
        "failures": [
            {
                **env["failures"][0],
                "message": "recipe zzz not found in registry",
                "timestamp": "2026-02-09T00:00:00Z",
            }
        ],
    }
    b = {
        "schema_version": 1,
        "recipe": "node",
        "platform": "linux-alpine-musl-x86_64",
        "exit_code": 8,
        "category": "deterministic",
        "timestamp": "2026-02-07T03:05:28Z",
    }
    f = tmp_path / "data" / "failures"
    f.mkdir(parents=True)
    (f / "homebrew-2026-02-07T03-03-36Z.jsonl").write_text(codec.dumps_line(env) + "\n")
    (f / "homebrew-2026-02-09T00-00-00Z.jsonl").write_text(codec.dumps_line(later) + "\n")
    (f / "homebrew-2026-02-07T03-05-28Z.jsonl").write_text(codec.dumps_line(b) + "\n")
    before = snapshot(tmp_path)
    engine.up(Store(tmp_path))
    (rec,) = find(tmp_path, "homebrew:node", platform="linux-alpine-musl-x86_64")
    assert rec["blocked_by"] == ["ada-url"]  # the nearest *earlier* one, not the later zzz
    ev = rec["evidence"][0]
    assert ev["source"] == "sibling_record"
    assert ev["file"] == "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl" and ev["line"] == 1
    engine.down(Store(tmp_path), "base")
    assert snapshot(tmp_path) == before


def test_down_removes_exactly_what_up_added(fixture_repo):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo, "0001")
    at_0001 = snapshot(root)
    engine.up(repo, "0002", options=RunOptions(evidence=(EVIDENCE,)))
    assert snapshot(root) != at_0001
    engine.down(repo)
    assert data_only(snapshot(root)) == data_only(at_0001)


def test_check_passes_after_backfill(sample_with_evidence):
    root, _ = sample_with_evidence
    assert check_repo(Store(root)).ok


# --------------------------------------------------------------------------- real data

REGISTRY = re.compile(r"recipe ([^\s;'\"]+) not found in registry")


def test_acceptance_on_the_feb_8_snapshot(tmp_path):
    root = copy_repo(corpus_snapshot("2026-02-08"), tmp_path)
    engine.up(Store(root))
    assert check_repo(Store(root)).ok
    expect = {
        "homebrew:node": ["ada-url"],
        "homebrew:jq": ["oniguruma"],
        "homebrew:neovim": ["tree-sitter@0.25"],
    }
    for pid, names in expect.items():
        recs = [r for r in find(root, pid) if r["scope"] == "package"]
        assert recs and all(r["blocked_by"] == names for r in recs), pid
    # independent recount: every envelope record whose message carries the registry error
    # is missing_dep with exactly the named recipes; none without it gains a name
    for r in records(root):
        if r["scope"] != "package":
            continue
        named = list(dict.fromkeys(REGISTRY.findall(r["message"])))
        if named:
            assert r["category"] == "missing_dep", r["package_id"]
            assert r["blocked_by"] == named, r["package_id"]
        elif "package '" not in r["message"]:
            assert "evidence" not in r, r["package_id"]
        if re.search(r"Resolving runtime dependency|Installing dependency:", r["message"]) and (
            not named
        ):
            assert r["blocked_by"] is None


def test_written_lines_are_canonical_and_keep_every_other_key(sample_with_evidence):
    """Every line step 0002 changes is the canonical encoding of its object, and holds
    the keys it held at step 0001 in the same order, values changed and keys added only."""
    root, run = sample_with_evidence
    assert any(s.changed_files for s in run.steps if s.step.id == "0002")
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        for raw in f.read_bytes().splitlines():
            if raw.strip():
                assert codec.dumps_bytes(codec.loads(raw)) == raw, f.name


def test_a_line_not_in_canonical_form_is_reencoded_and_still_comes_back(fixture_repo):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo, "0001")
    target = None
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        lines = f.read_bytes().split(b"\n")
        for i, line in enumerate(lines):
            if b"not found in registry" in line and b'"blocked_by":null' in line:
                # a hand edit's spacing: the line comes out canonical, and down gives the
                # hand-edited bytes back (the ledger keeps them)
                lines[i] = line.replace(b'"blocked_by":null', b'"blocked_by": null', 1)
                target = (f, i)
                break
        if target:
            f.write_bytes(b"\n".join(lines))
            break
    assert target, "the sample has a registry error"
    f, i = target
    before = snapshot(root)
    engine.up(repo, "0002")
    new = f.read_bytes().split(b"\n")[i]
    assert codec.dumps_bytes(codec.loads(new)) == new  # written canonical
    assert b'"evidence":[{"source":"message"' in new  # and backfilled
    engine.down(repo, "0001")
    assert data_only(snapshot(root)) == data_only(before)


# --------------------------------------------------------------------------- review fixes


def _queue(entries):
    return {
        "schema_version": 1,
        "updated_at": "2026-03-03T03:21:03Z",
        "entries": [
            {
                "name": name,
                "source": source,
                "priority": 1,
                "status": "pending",
                "confidence": "auto",
                "disambiguated_at": None,
                "failure_count": 0,
                "next_retry_at": None,
            }
            for name, source in entries
        ],
    }


def _repo(tmp_path, files, queue=None):
    (tmp_path / "data" / "failures").mkdir(parents=True)
    (tmp_path / "data" / "queues").mkdir()
    for name, text in files.items():
        (tmp_path / "data" / "failures" / name).write_text(text)
    if queue:
        (tmp_path / "data" / "queues" / "priority-queue.json").write_text(codec.dumps_queue(queue))
    return tmp_path


RECIPE = (
    '{"schema_version":1,"recipe":"%s","platform":"linux-alpine-musl-x86_64","exit_code":8,'
    '"category":"missing_dep",%s"timestamp":"2026-02-21T07:27:58Z"}\n'
)


def test_a_recipe_whose_package_is_not_named_after_it_takes_its_evidence(tmp_path):
    """`bat` is github:sharkdp/bat in the queue: the per-recipe line's package is that one,
    so the validation results for `bat` reach it (not a made-up github:bat)."""
    root = _repo(
        tmp_path,
        {"batch-2026-02-21T07-27-58Z.jsonl": RECIPE % ("bat", "")},
        _queue([("bat", "github:sharkdp/bat"), ("oniguruma", "homebrew:oniguruma")]),
    )
    ev = tmp_path / "ev" / "2026-02-21T07-27-58Z"
    ev.mkdir(parents=True)
    (ev / "validation-results-linux-alpine-musl-x86_64.json").write_text(
        json.dumps(
            [
                {
                    "recipe": "bat",
                    "platform": "linux-alpine-musl-x86_64",
                    "status": "fail",
                    "exit_code": 8,
                    "attempts": 1,
                    "blocked_by": ["oniguruma"],
                }
            ]
        )
    )
    run = engine.up(Store(root), options=RunOptions(evidence=(str(tmp_path / "ev"),)))
    (rec,) = records(root)
    assert rec["ecosystem"] == "github" and rec["blocked_by"] == ["oniguruma"]
    assert not any("unmatched" in n for s in run.steps for n in s.notes)
    from migrate.explain import explain

    doc = explain(Store(root), "github:sharkdp/bat")
    assert [r["name"] for r in doc["records"]] == ["bat"]


def test_down_of_0002_leaves_lines_it_did_not_change_even_without_a_final_newline(tmp_path):
    """A file whose only change at 0002 is its final newline: down takes back that newline
    and nothing else (here a v2 line already carrying evidence)."""
    root = _repo(tmp_path, {"batch-2026-02-21T07-27-58Z.jsonl": RECIPE % ("apr-util", "")})
    repo = Store(root)
    engine.up(repo, "0001")
    f = root / "data" / "failures" / "batch-2026-02-21T07-27-58Z.jsonl"
    line = json.loads(f.read_text())
    line |= {
        "blocked_by": ["apr"],
        "evidence": [{"source": "log", "names": ["apr"], "detail": "d"}],
    }
    f.write_bytes(f.read_bytes() + codec.dumps_bytes(line))  # no final newline
    before = snapshot(root)
    engine.up(repo)
    engine.down(repo, "0001")
    assert data_only(snapshot(root)) == data_only(before)


def test_a_record_that_says_nothing_is_missing_keeps_saying_it(tmp_path):
    """`blocked_by: []` is a statement, not an unknown: names a message proves are added
    beside it (the record's [] kept as evidence, a disagreement noted, down exact), and an
    exit-8 line stating [] takes no sibling's names."""
    env = {
        "schema_version": 1,
        "ecosystem": "homebrew",
        "environment": "linux-glibc-x86_64",
        "updated_at": "2026-02-20T00-00-00Z",
        "failures": [
            {
                "package_id": "homebrew:apr-util",
                "category": "validation_failed",
                "blocked_by": [],
                "message": "Error: registry: recipe apr not found in registry",
                "timestamp": "2026-02-20T00:00:00Z",
            }
        ],
    }
    root = _repo(
        tmp_path,
        {
            "homebrew-2026-02-20T00-00-00Z.jsonl": codec.dumps_line(env) + "\n",
            "homebrew-2026-02-21T07-27-58Z.jsonl": RECIPE % ("apr-util", '"blocked_by":[],'),
        },
    )
    before = snapshot(root)
    run = engine.up(Store(root))
    item, line = records(root)
    assert item["blocked_by"] == ["apr"]
    assert [(e["source"], e["names"]) for e in item["evidence"]] == [
        ("record", []),
        ("message", ["apr"]),
    ]
    assert any("disagreement" in n and "record (none)" in n for n in run.steps[1].notes)
    assert line["blocked_by"] == [] and "evidence" not in line
    engine.down(Store(root), "base")
    assert snapshot(root) == before
