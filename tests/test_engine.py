"""The engine: plans as values, stairway round trips on bytes, crash resume, lock, verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from migrate import engine
from migrate.errors import DataChanged, LedgerError, LockHeld, UsageError
from migrate.ledger import Ledger
from migrate.repo import LEDGER_DIR, LOCK_FILE, DataRepo
from migrate.steps import STEPS
from tests.conftest import FIXTURES, copy_repo
from tests.helpers import data_only, snapshot

STEP_IDS = [s.id for s in STEPS]


pytestmark = pytest.mark.usefixtures("frozen_clock")


FIXTURE_REPOS = ["sample", "anomalies", "early-layout"]


# ------------------------------------------------------------------------ plans are values


def test_plan_from_base_to_head_lists_every_step_in_order(fixture_repo):
    ledger = Ledger.load(DataRepo(fixture_repo("sample")))
    p = engine.plan(ledger, "up", "head")
    assert [s.id for s in p.steps] == STEP_IDS
    assert p.current is None and p.target == STEP_IDS[-1]
    assert engine.plan(ledger, "up", STEP_IDS[0]).steps == (STEPS[0],)
    assert engine.plan(ledger, "down", "base").steps == ()


@pytest.mark.parametrize("target", ["9999", "nope", "+7"])
def test_unknown_targets_are_usage_errors(fixture_repo, target):
    ledger = Ledger.load(DataRepo(fixture_repo("sample")))
    with pytest.raises(UsageError):
        engine.plan(ledger, "up", target)


def test_targets_by_prefix_name_and_relative(fixture_repo):
    assert engine.resolve_target("records-v2", "up", None) == "0001"
    assert engine.resolve_target("+1", "up", None) == STEP_IDS[0]
    assert engine.resolve_target("-1", "down", STEP_IDS[0]) is None
    assert engine.resolve_target(None, "down", STEP_IDS[0]) is None


# ------------------------------------------------------------------------ stairway


@pytest.mark.parametrize("name", FIXTURE_REPOS)
def test_stairway_up_down_up_is_byte_exact_per_step(fixture_repo, name):
    root = fixture_repo(name)
    repo = DataRepo(root)
    original = snapshot(root)
    states = [original]
    for step_id in STEP_IDS:
        engine.up(repo, step_id)
        after = snapshot(root)
        if name == "sample":  # every step has work on the sample: a no-op step must fail here
            assert data_only(after) != data_only(states[-1]), f"step {step_id} changed nothing"
        engine.down(repo)  # one step back
        assert snapshot(root) == states[-1], f"down of {step_id} is not exact"
        engine.up(repo, step_id)
        assert data_only(snapshot(root)) == data_only(after), f"up of {step_id} not repeatable"
        states.append(snapshot(root))
    engine.down(repo, "base")
    assert snapshot(root) == original
    assert not (root / LEDGER_DIR).exists()


def test_second_up_changes_no_byte(fixture_repo):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    engine.up(repo)
    first = snapshot(root)
    run = engine.up(repo)
    assert run.plan.steps == ()
    assert snapshot(root) == first


def test_dry_run_writes_nothing_and_reports_counts(fixture_repo):
    root = fixture_repo("sample")
    before = snapshot(root)
    run = engine.up(DataRepo(root), dry_run=True, diff=True)
    assert snapshot(root) == before
    assert not (root / LEDGER_DIR).exists()
    step = run.steps[0]
    assert step.changed_files > 0
    assert (step.totals["envelope records"], step.totals["per-recipe lines"]) == (49, 26)
    assert any(f.diff.startswith("--- a/data/failures/") for f in step.files)
    assert not list(root.rglob("*.migrate-stage"))


def test_ledger_records_step_time_version_and_checksums(fixture_repo):
    root = fixture_repo("sample")
    engine.up(DataRepo(root), "0001")
    ledger = json.loads((root / LEDGER_DIR / "ledger.json").read_text())
    entry = ledger["steps"][0]
    assert ledger["format"] == 1
    assert entry["id"] == "0001" and entry["state"] == "applied"
    assert entry["applied_at"] == "2026-03-04T05:06:07Z"
    lines = (root / LEDGER_DIR / "0001-records-v2.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["after"].startswith("sha256:") for x in lines)


# ------------------------------------------------------------------------ crashes


class Boom(Exception):
    pass


def _explode_after(k):
    def hook(i):
        if i + 1 == k:
            raise Boom

    return hook


@pytest.mark.parametrize("k", [1, 3, 7])
def test_interrupted_up_is_finished_by_the_next_up(fixture_repo, tmp_path, k):
    clean = fixture_repo("sample")
    engine.up(DataRepo(clean))
    expected = data_only(snapshot(clean))

    root = fixture_repo("anomalies").parent / "again"
    os.rename(clean, root)
    engine.down(DataRepo(root), "base")
    repo = DataRepo(root)
    with pytest.raises(Boom):
        engine.up(repo, after_each=_explode_after(k))
    assert engine.status(repo)["unfinished"]["state"] == "applying"
    engine.up(repo)
    assert data_only(snapshot(root)) == expected
    assert engine.status(repo)["pending"] == []
    assert not list(root.rglob("*.migrate-stage"))


@pytest.mark.parametrize("k", [1, 4])
def test_interrupted_up_is_undone_exactly_by_down(fixture_repo, k):
    root = fixture_repo("sample")
    original = snapshot(root)
    repo = DataRepo(root)
    with pytest.raises(Boom):
        engine.up(repo, after_each=_explode_after(k))
    engine.down(repo)
    assert snapshot(root) == original


def test_interrupted_down_is_finished_by_the_next_down(fixture_repo):
    root = fixture_repo("sample")
    original = snapshot(root)
    repo = DataRepo(root)
    engine.up(repo, "0001")
    with pytest.raises(Boom):
        engine.down(repo, "base", after_each=_explode_after(2))
    with pytest.raises(LedgerError):
        engine.up(repo)  # refuses to go up over a half-reverted step
    engine.down(repo, "base")
    assert snapshot(root) == original


def test_stage_files_of_a_run_killed_before_the_ledger_are_cleaned(fixture_repo):
    root = fixture_repo("sample")
    stray = root / "data" / "failures" / ".homebrew.jsonl.migrate-stage"
    stray.write_bytes(b"half")
    engine.up(DataRepo(root), dry_run=True)
    engine.up(DataRepo(root))
    assert not stray.exists()


# ------------------------------------------------------------------------ lock


def test_a_second_writer_is_refused_with_who_holds_the_lock(fixture_repo):
    root = fixture_repo("sample")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (root / LOCK_FILE).write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "host": os.uname().nodename,
                    "started_at": "2026-01-01T00:00:00Z",
                    "command": "up",
                }
            )
        )
        with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
            engine.up(DataRepo(root))
    finally:
        proc.kill()
        proc.wait()
    assert not (root / LEDGER_DIR).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(fixture_repo, capsys):
    root = fixture_repo("sample")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (root / LOCK_FILE).write_text(
        json.dumps(
            {
                "pid": proc.pid,
                "host": os.uname().nodename,
                "started_at": "2026-01-01T00:00:00Z",
                "command": "up",
            }
        )
    )
    engine.up(DataRepo(root))
    assert "stale lock" in capsys.readouterr().err
    assert not (root / LOCK_FILE).exists()


# ------------------------------------------------------------------------ verify / edits


def test_verify_and_down_notice_hand_edits(fixture_repo):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    engine.up(repo)
    assert engine.verify(repo) == []
    edited = sorted((root / "data" / "failures").glob("*.jsonl"))[1]
    edited.write_bytes(edited.read_bytes() + b"\n")
    rel = edited.relative_to(root).as_posix()
    assert [p for p, _ in engine.verify(repo)] == [rel]
    with pytest.raises(DataChanged, match="changed since step"):
        engine.down(repo, "base")


def test_unknown_step_in_ledger_names_the_tool_version(fixture_repo):
    root = fixture_repo("sample")
    engine.up(DataRepo(root))
    path = root / LEDGER_DIR / "ledger.json"
    doc = json.loads(path.read_text())
    doc["steps"].append({**doc["steps"][-1], "id": "0099", "tool_version": "9.0.0"})
    path.write_text(json.dumps(doc))
    with pytest.raises(LedgerError, match="9.0.0"):
        engine.status(DataRepo(root))


def test_newer_ledger_format_is_refused(fixture_repo):
    root = fixture_repo("sample")
    engine.up(DataRepo(root))
    path = root / LEDGER_DIR / "ledger.json"
    doc = json.loads(path.read_text())
    doc["format"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(LedgerError, match="newer migrate"):
        engine.up(DataRepo(root))


# ------------------------------------------------------------------------ real data


def test_corpus_up_check_down_is_exact(corpus_repo):
    from migrate.check import check_repo

    repo = DataRepo(corpus_repo)
    original = snapshot(corpus_repo)
    before = check_repo(repo)
    run = engine.up(repo)
    totals = run.steps[0].totals
    assert totals["envelope records"] == before.records["envelope"] > 300
    assert totals["per-recipe lines"] == before.records["recipe"] > 100
    after = check_repo(repo)
    assert after.ok, after.problems[:5]
    assert (after.failures_version, after.lines, after.records) == (2, before.lines, before.records)
    engine.down(repo, "base")
    assert snapshot(corpus_repo) == original


@pytest.mark.skipif(not __import__("shutil").which("git"), reason="git not installed")
def test_git_status_is_clean_after_up_then_down(corpus_repo):
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=corpus_repo, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    engine.up(DataRepo(corpus_repo))
    assert git("status", "--porcelain")
    engine.down(DataRepo(corpus_repo), "base")
    assert git("status", "--porcelain") == ""


def test_jobs_give_the_same_bytes_as_a_serial_run(fixture_repo, tmp_path):
    from migrate.check import check_repo

    serial = fixture_repo("sample")
    engine.up(DataRepo(serial))
    expected = snapshot(serial)
    parallel = copy_repo(FIXTURES / "sample", tmp_path / "p")
    original = snapshot(parallel)
    engine.up(DataRepo(parallel), jobs=2)
    assert snapshot(parallel) == expected
    assert (
        check_repo(DataRepo(parallel), jobs=2).as_dict() == check_repo(DataRepo(serial)).as_dict()
    )
    engine.down(DataRepo(parallel), "base", jobs=2)
    assert snapshot(parallel) == original
