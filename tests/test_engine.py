"""The engine: plans as values, stairway round trips on bytes, crash resume, lock, verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from migrate import engine
from migrate.errors import LedgerError, LockHeld, UsageError
from migrate.layout import LEDGER_DIR, LOCK_FILE
from migrate.steps import REGISTRY as STEPS
from migrate.store import Store
from migrate.store.ledger import Ledger
from tests.conftest import FIXTURES, copy_repo
from tests.helpers import data_only, leftovers, run_files, snapshot

STEP_IDS = [s.id for s in STEPS]


pytestmark = pytest.mark.usefixtures("frozen_clock")


FIXTURE_REPOS = ["sample", "anomalies", "early-layout"]


# ------------------------------------------------------------------------ plans are values


def test_plan_from_base_to_head_lists_every_step_in_order(fixture_repo):
    ledger = Ledger.load(Store(fixture_repo("sample")))
    p = engine.plan(ledger, "up", "head")
    assert [s.id for s in p.steps] == STEP_IDS
    assert p.current is None and p.target == STEP_IDS[-1]
    assert engine.plan(ledger, "up", STEP_IDS[0]).steps == (STEPS[0],)
    assert engine.plan(ledger, "down", "base").steps == ()


@pytest.mark.parametrize("target", ["9999", "nope", "+7"])
def test_unknown_targets_are_usage_errors(fixture_repo, target):
    ledger = Ledger.load(Store(fixture_repo("sample")))
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
    repo = Store(root)
    original = snapshot(root)
    states = [original]
    for step_id in STEP_IDS:
        engine.up(repo, step_id)
        after = snapshot(root)
        if name == "sample":  # every step has work on the sample: a no-op step must fail here
            assert data_only(after) != data_only(states[-1]), f"step {step_id} changed nothing"
        engine.down(repo)  # one step back
        assert data_only(snapshot(root)) == data_only(states[-1]), f"down of {step_id} not exact"
        engine.up(repo, step_id)
        assert data_only(snapshot(root)) == data_only(after), f"up of {step_id} not repeatable"
        states.append(snapshot(root))
    engine.down(repo, "base")
    assert snapshot(root) == original
    assert not (root / LEDGER_DIR).exists()


def test_second_up_changes_no_byte(fixture_repo):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo)
    first = snapshot(root)
    run = engine.up(repo)
    assert run.plan.steps == ()
    assert snapshot(root) == first


def test_dry_run_writes_nothing_and_reports_counts(fixture_repo):
    root = fixture_repo("sample")
    before = snapshot(root)
    run = engine.up(Store(root), dry_run=True, diff=True)
    assert snapshot(root) == before
    assert not (root / LEDGER_DIR).exists()
    step = run.steps[0]
    assert step.changed_files > 0
    assert (step.totals["envelope records"], step.totals["per-recipe lines"]) == (49, 26)
    assert any(diff.startswith("--- a/data/failures/") for _, diff in run.files)
    assert leftovers(root) == []


def _runs(root):
    return run_files(root)


def test_the_ledger_is_one_file_per_run_with_the_files_each_step_changed(fixture_repo):
    """A run's file says which steps changed which file and what their ``down`` cannot
    rebuild: no checksum of any file (git holds every byte; a file's content says its
    version)."""
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo, "0001")
    engine.up(repo)
    first, second = _runs(root)
    assert first.name.startswith("000001-2026-03-04T05-06-07Z-")
    assert second.name.startswith("000002-")
    head, *entries = [json.loads(x) for x in second.read_text().splitlines()]
    assert head["format"] == 3 and head["kind"] == "up" and head["at"] == "2026-03-04T05:06:07Z"
    assert (head["from"], head["to"], head["steps"]) == ("0001", "0003", ["0002", "0003"])
    by_path = {e["path"]: e for e in entries}
    changed = [p for p, e in by_path.items() if p.startswith("data/failures/")]
    assert len(changed) == head["counts"]["0002"]["files_changed"] == 5
    assert len(by_path) == len(changed) + 2  # and both queues, whose statuses moved
    node = by_path["data/failures/homebrew-2026-02-07T03-03-36Z.jsonl"]
    assert node == {"path": node["path"], "steps": ["0002"]}  # (its one line: nothing to add)
    queue = by_path["data/queues/priority-queue.json"]
    assert queue["steps"] == ["0003"]
    assert all(set(e) >= {"id", "status"} for e in queue["patch"]["0003"]["entries"])
    assert not any(len(v) == 64 for v in json.dumps(entries).split('"'))  # (no sha256)
    (only,) = [json.loads(x) for x in first.read_text().splitlines()[1:2]]
    assert set(only) == {"path", "steps"}  # step 0001's lines all come back from v2 alone


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
    engine.up(Store(clean))
    expected = data_only(snapshot(clean))

    root = fixture_repo("anomalies").parent / "again"
    os.rename(clean, root)
    engine.down(Store(root), "base")
    repo = Store(root)
    with pytest.raises(Boom):
        engine.up(repo, after_each=_explode_after(k))
    assert engine.status(repo)["unfinished"]["kind"] == "up"
    run = engine.up(repo)
    assert run.settled.startswith("finished the interrupted up run")
    assert data_only(snapshot(root)) == expected
    assert engine.status(repo)["pending"] == []
    assert leftovers(root) == []


@pytest.mark.parametrize("k", [1, 4])
def test_interrupted_up_is_undone_exactly_by_down(fixture_repo, k):
    root = fixture_repo("sample")
    original = snapshot(root)
    repo = Store(root)
    with pytest.raises(Boom):
        engine.up(repo, after_each=_explode_after(k))
    engine.down(repo, "base")
    assert snapshot(root) == original


def test_interrupted_down_is_finished_by_the_next_run(fixture_repo):
    root = fixture_repo("sample")
    original = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    at_head = data_only(snapshot(root))
    with pytest.raises(Boom):
        engine.down(repo, "base", after_each=_explode_after(2))
    engine.up(repo)  # finishes the down, then goes up again
    assert data_only(snapshot(root)) == at_head
    with pytest.raises(Boom):
        engine.down(repo, "base", after_each=_explode_after(5))
    engine.down(repo, "base")  # finishes it: nothing left to revert
    assert snapshot(root) == original


def test_stage_files_of_a_run_killed_before_the_ledger_are_cleaned(fixture_repo):
    root = fixture_repo("sample")
    stray = root / "data" / "failures" / ".homebrew.jsonl.migrate-tmp"
    stray.write_bytes(b"half")
    engine.up(Store(root), dry_run=True)
    engine.up(Store(root))
    assert not stray.exists()


# ------------------------------------------------------------------------ lock


def test_a_second_writer_is_refused_with_who_holds_the_lock(fixture_repo):
    root = fixture_repo("sample")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (root / LOCK_FILE).parent.mkdir(parents=True)
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
            engine.up(Store(root))
    finally:
        proc.kill()
        proc.wait()
    assert [p.name for p in (root / LEDGER_DIR).iterdir()] == ["lock"]  # (theirs, untouched)


def test_a_stale_lock_of_a_dead_process_is_taken_over(fixture_repo, capsys):
    root = fixture_repo("sample")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (root / LOCK_FILE).parent.mkdir(parents=True)
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
    engine.up(Store(root))
    assert "stale lock" in capsys.readouterr().err
    assert not (root / LOCK_FILE).exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_private_lock_files_of_a_contender_killed_while_taking_the_lock_are_removed(
    fixture_repo,
):
    """A kill between creating ``lock.HOST.PID`` and removing it (or while a stale lock is
    set aside) left the file for good: the clean-clone CI caught it as a `down --to base`
    that did not give the original tree back. A kill can leave it empty. What cannot be
    removed neither stops the run nor keeps the lock."""
    root = fixture_repo("sample")
    original = snapshot(root)
    dead, other_dead = _dead_pid(), _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    host = os.uname().nodename
    record = json.dumps({"pid": 1, "host": host, "started_at": "2026-01-01T00:00:00Z"})
    own = root / LEDGER_DIR
    files = {
        f"lock.{host}.{dead}": "",  # (killed before it wrote a byte)
        f"lock.stale.{host}.{dead}": record,  # (a lock it set aside)
        f"lock.{dead}": record,  # (named without the host)
        f"lock.stale.{host}.{_dead_pid()}": "",  # (a host named stale.*: see the sweep)
        f"lock.{host}.{alive.pid}": record,  # (a live contender's: kept)
        f"lock.elsewhere.{dead}": record,  # (another host's pid: kept)
        f"lock.{host}.{dead}x": record,  # (not a name migrate writes)
        f"lock.{host}.\u00b2": record,  # (a digit to isdigit(), not to int())
    }
    folder = f"lock.{host}.{other_dead}"  # (a dead pid's name, not a file)
    try:
        own.mkdir()
        for name, text in files.items():
            (own / name).write_text(text)
        (own / folder).mkdir()
        repo = Store(root)
        engine.up(repo)
        left = sorted(p.name for p in own.glob("lock*"))
    finally:
        alive.kill()
        alive.wait()
    assert left == sorted([*list(files)[4:], folder])
    engine.down(repo, "base")
    assert data_only(snapshot(root)) == data_only(original)


def test_the_lock_is_released_whatever_ends_the_block(fixture_repo):
    """A Ctrl-C anywhere while the lock is held (the sweep of dead contenders' files runs
    there too) releases it; at base migrate's folder, made for the lock, goes with it."""
    from migrate.store.lock import hold

    root = fixture_repo("sample")
    with pytest.raises(KeyboardInterrupt), hold(Store(root), "up"):
        assert (root / LOCK_FILE).exists()
        raise KeyboardInterrupt
    assert not (root / LOCK_FILE).exists() and not (root / LEDGER_DIR).exists()


# ------------------------------------------------------------------------ verify / edits


def test_down_keeps_a_hand_edit_of_a_migrated_file_and_takes_migrates_changes_out(
    fixture_repo,
):
    """A migrated file someone edited since (here: a line added by hand): `down` takes
    back what migrate changed, line by line, and keeps their edit; every untouched file
    gets its exact bytes back."""
    root = fixture_repo("sample")
    original = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    edited = root / "data" / "failures" / "homebrew-2026-02-07T03-03-36Z.jsonl"
    added = b'{"schema_version":1,"recipe":"x","platform":"darwin-arm64","exit_code":6,'
    added += b'"category":"deterministic","timestamp":"2026-02-07T04:00:00Z"}\n'
    edited.write_bytes(edited.read_bytes() + added)
    rel = edited.relative_to(root).as_posix()
    engine.down(repo, "base")
    assert snapshot(root) == {**original, rel: original[rel] + added}


def _edit_header(root, **changes):
    (path,) = _runs(root)
    head, rest = path.read_text().split("\n", 1)
    path.write_text(json.dumps({**json.loads(head), **changes}) + "\n" + rest)


def test_unknown_step_in_ledger_names_the_tool_version(fixture_repo):
    root = fixture_repo("sample")
    engine.up(Store(root))
    _edit_header(root, steps=["0001", "0099"], tool_version="9.0.0")
    with pytest.raises(LedgerError, match="9.0.0"):
        engine.status(Store(root))


def test_newer_ledger_format_is_refused(fixture_repo):
    root = fixture_repo("sample")
    engine.up(Store(root))
    _edit_header(root, format=4)
    with pytest.raises(LedgerError, match="newer migrate"):
        engine.up(Store(root))


def test_a_ledger_of_the_first_format_says_how_to_get_out(fixture_repo):
    root = fixture_repo("sample")
    (root / LEDGER_DIR).mkdir()
    (root / LEDGER_DIR / "ledger.json").write_text('{"format": 1, "steps": []}')
    with pytest.raises(LedgerError, match="format 1") as exc:
        engine.status(Store(root))
    assert "down --to base" in exc.value.hint


# ------------------------------------------------------------------------ real data


def test_corpus_up_check_down_is_exact(corpus_repo):
    from migrate.check import check_repo

    repo = Store(corpus_repo)
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
    engine.up(Store(corpus_repo))
    assert git("status", "--porcelain")
    engine.down(Store(corpus_repo), "base")
    assert git("status", "--porcelain") == ""


def test_jobs_give_the_same_bytes_as_a_serial_run(fixture_repo, tmp_path):
    from migrate.check import check_repo

    serial = fixture_repo("sample")
    engine.up(Store(serial))
    expected = snapshot(serial)
    parallel = copy_repo(FIXTURES / "sample", tmp_path / "p")
    original = snapshot(parallel)
    engine.up(Store(parallel), jobs=2)
    assert data_only(snapshot(parallel)) == data_only(expected)
    assert [p.read_text().split("\n", 1)[1] for p in _runs(parallel)] == [
        p.read_text().split("\n", 1)[1] for p in _runs(serial)
    ]  # the same entries
    assert check_repo(Store(parallel), jobs=2).as_dict() == check_repo(Store(serial)).as_dict()
    engine.down(Store(parallel), "base", jobs=2)
    assert snapshot(parallel) == original


# ------------------------------------------------------------------------ the step contract


def test_each_step_declares_the_version_it_produces():
    from migrate.steps.base import Family

    def at(step):
        return STEPS.versions_at(step)[Family.FAILURES]

    assert at(None) == 1
    assert at("0001") == at("0002") == at("0003") == 2


def test_an_exception_in_a_step_is_a_bug_in_migrate_not_bad_data(fixture_repo, monkeypatch, capsys):
    from migrate.cli import main
    from migrate.steps.s0002_backfill_blocked_by import BackfillBlockedBy

    root = fixture_repo("sample")
    before = snapshot(root)

    def broken(self, line, at, prepared, tally):
        raise KeyError("oops")

    monkeypatch.setattr(BackfillBlockedBy, "line_up", broken)
    assert main(["up", "--repo", str(root)]) == 6
    err = capsys.readouterr().err
    assert "a step failed on 15 file(s), first: step 0002 on data/failures/" in err
    assert "nothing was written" in err and "bug in migrate" in err
    assert "Traceback" not in err and "problem(s) in the data" not in err
    assert main(["--debug", "up", "--repo", str(root)]) == 6
    debug = capsys.readouterr().err
    assert "Traceback" in debug and "KeyError: 'oops'" in debug
    assert snapshot(root) == before


def test_a_line_a_step_writes_wrong_is_caught_before_anything_is_committed(
    fixture_repo, monkeypatch
):
    """Step 0001 turned buggy: it writes a category its own v2 model refuses. The input is
    valid, so the engine reports a bug in the step, and nothing is written."""
    from migrate.errors import StepBug
    from migrate.steps import s0001_records_v2

    root = fixture_repo("sample")
    before = snapshot(root)
    real = s0001_records_v2.up_0001

    def wrong(line, ecosystem=None):
        new = real(line, ecosystem)
        if "recipe" in new:
            new["category"] = "bogus"
        return new

    monkeypatch.setattr(s0001_records_v2, "up_0001", wrong)
    with pytest.raises(StepBug, match="nothing was written") as exc:
        engine.up(Store(root))
    assert "bogus" in exc.value.tracebacks[0]
    assert snapshot(root) == before


def test_a_run_reads_each_file_for_its_steps_once_and_writes_it_once(fixture_repo, monkeypatch):
    """However many steps apply: one pass that reads every failure file (its version,
    what steps need from it), one read to rewrite a file, one staged write and one write
    in place."""
    import os
    from collections import Counter

    root = fixture_repo("sample")
    reads, renames = Counter(), Counter()
    real_read, real_open = Store.read_bytes, os.open

    def read(self, rel):
        reads[rel] += 1
        return real_read(self, rel)

    def open_(path, flags, *a, **k):
        if flags & os.O_TRUNC:
            renames[os.path.relpath(path, root)] += 1
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(Store, "read_bytes", read)
    monkeypatch.setattr(os, "open", open_)
    engine.up(Store(root))
    failures = [r for r in reads if r.startswith("data/failures/")]
    assert len(failures) == 16
    rewritten = [r for r in renames if r.startswith("data/failures/")]
    assert len(rewritten) == 15  # (one is empty)
    assert all(renames[r] == 1 for r in rewritten)
    assert all(reads[r] == (2 if r in rewritten else 1) for r in failures), reads


def test_steps_0001_and_0002_keep_no_copy_of_any_real_line(corpus_repo):
    """Every real line comes back from its v2 form alone: on each snapshot, neither step
    needs the ledger to keep an original (a loss would be counted, by reason)."""
    run = engine.up(Store(corpus_repo))
    kept = {sr.step.id: dict(sr.kept) for sr in run.steps}
    assert kept["0001"] == {} and kept["0002"] == {}
    (ledger_run,) = run_files(corpus_repo)
    assert '"lines"' not in ledger_run.read_text()


def test_a_step_whose_down_does_not_undo_its_up_refuses_the_run(fixture_repo, monkeypatch):
    """A broken inverse is a bug in the step, found before anything is written, never
    papered over by keeping the original lines."""
    from migrate.errors import StepBug
    from migrate.steps.s0002_backfill_blocked_by import BackfillBlockedBy

    root = fixture_repo("sample")
    before = snapshot(root)
    monkeypatch.setattr(BackfillBlockedBy, "line_down", lambda self, line: line)
    with pytest.raises(StepBug, match="does not give back the line it was given") as exc:
        engine.up(Store(root))
    assert "step 0002" in str(exc.value)
    assert snapshot(root) == before
