"""`migrate check`: every real shape is accepted, every broken line is named, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.store import Store
from tests.conftest import FIXTURES, SNAPSHOTS, corpus_snapshot


def count_lines(root):
    n = blank = 0
    for f in (root / "data" / "failures").glob("*.jsonl"):
        for line in f.read_bytes().splitlines():
            n += 1
            blank += not line.strip()
    return n, blank


@pytest.mark.parametrize("name", ["sample", "anomalies", "early-layout"])
def test_fixtures_are_clean_at_v1_and_every_line_is_accounted_for(name):
    root = FIXTURES / name
    report = check_repo(Store(root))
    assert report.ok, [str(p) for p in report.problems]
    lines, blank = count_lines(root)
    assert report.total_lines == lines
    assert report.lines["blank"] == blank
    assert report.lines["envelope"] + report.lines["recipe"] + blank == lines


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_real_snapshots_pass_check(snapshot):
    root = corpus_snapshot(snapshot)
    report = check_repo(Store(root))
    assert report.ok, [str(p) for p in report.problems[:5]]
    lines, _ = count_lines(root)
    assert report.total_lines == lines
    assert report.records["envelope"] > 300 and report.records["recipe"] > 100


def test_each_broken_line_is_reported_with_file_and_line(capsys):
    rc = main(["check", "--repo", str(FIXTURES / "bad")])
    out = capsys.readouterr().out
    assert rc == 1
    f = "data/failures/broken.jsonl"
    expected = {
        2: "invalid JSON",
        3: "invalid JSON",
        4: "invalid UTF-8",
        5: "unknown shape",
        6: "schema_version 3 is not supported",
        7: "exit_code: Input should be a valid integer",
        8: "failures: Input should be a valid list",
        9: "expected a JSON object, got list",
    }
    for line, reason in expected.items():
        assert any(x.startswith(f"{f}:{line}: ") and reason in x for x in out.splitlines()), (
            line,
            out,
        )
    assert f"{f}:1:" not in out and f"{f}:10:" not in out
    assert "2 envelope" in out or "1 envelope" in out
    assert "Traceback" not in out


def test_broken_queue_is_reported_not_fatal(capsys):
    rc = main(["check", "--repo", str(FIXTURES / "bad-queue")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "data/queues/priority-queue.json:29: invalid JSON" in out  # where it breaks


def test_queue_violation_points_at_the_entry_line(fixture_repo, capsys):
    root = fixture_repo("sample")
    q = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["entries"][2]["failure_count"] = "three"
    q.write_text(json.dumps(doc, indent=2) + "\n")
    assert main(["check", "--repo", str(root)]) == 1
    out = capsys.readouterr().out
    assert (
        "data/queues/priority-queue.json:25: entries[2].failure_count:"
        " Input should be a valid integer" in out
    )


def test_json_and_github_formats(fixture_repo, capsys):
    root = FIXTURES / "bad"
    assert main(["check", "--repo", str(root), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {v["line"] for v in doc["violations"]} >= {2, 3, 4, 5, 6, 7, 8, 9}
    assert main(["check", "--repo", str(root), "--format", "github"]) == 1
    out = capsys.readouterr().out
    assert "::error file=data/failures/broken.jsonl,line=7,title=migrate check::exit_code:" in out


def test_symlink_leaving_the_repo_and_a_directory_are_reported(fixture_repo, capsys):
    root = fixture_repo("sample")
    os.symlink("/etc/hostname", root / "data" / "failures" / "evil.jsonl")
    (root / "data" / "failures" / "adir.jsonl").mkdir()
    assert main(["check", "--repo", str(root)]) == 1
    out = capsys.readouterr().out
    assert "data/failures/evil.jsonl: symlink leads outside the repo" in out
    assert "data/failures/adir.jsonl: is a directory, expected a file" in out


def test_paths_restrict_the_check(fixture_repo, capsys, monkeypatch):
    root = fixture_repo("sample")
    monkeypatch.chdir(root)
    assert main(["check", "data/failures/homebrew.jsonl"]) == 0
    assert "checked 1 failure files" in capsys.readouterr().out
    (root / "notes.txt").write_text("x")
    assert main(["check", "notes.txt"]) == 2
    assert "not a failure file or queue" in capsys.readouterr().err
    assert main(["check", "data/failures/nope.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_check_follows_the_recorded_version(fixture_repo, capsys):
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    assert check_repo(Store(root)).ok
    f = root / "data" / "failures" / "homebrew.jsonl"
    rec = json.loads(f.read_text().splitlines()[0])
    rec["failures"][0]["category"] = "validation_failed"  # legacy name: not a v2 category
    f.write_text(json.dumps(rec) + "\n" + f.read_text())
    report = check_repo(Store(root))
    assert [str(p).split(": ")[1] for p in report.problems] == ["failures[0].category"]


@pytest.mark.parametrize("args", [["check", "--repo", "/no/such/dir"], ["status", "--repo", "/"]])
def test_user_errors_exit_2_with_one_message_and_no_traceback(args):
    proc = subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("migrate: error: ")
    assert "Traceback" not in proc.stderr


def test_demo_runs(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ok: no violations" in out
