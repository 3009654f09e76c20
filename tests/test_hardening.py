"""Hostile and broken input: one decided outcome per kind (docs/INPUTS.md), crashes, races."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import BadInputError, RepoError
from migrate.store import Store
from migrate.store import staging as commit
from migrate.store.ledger import Ledger
from tests.conftest import copy_repo
from tests.helpers import data_only, leftovers, run_files, snapshot, up_stopped_in_the_third_write

GOOD = codec.dumps_line(
    {
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
).encode()
B = (
    b'{"schema_version":1,"recipe":"procs","platform":"linux-alpine-musl-x86_64",'
    b'"exit_code":6,"category":"deterministic","timestamp":"2026-02-08T02:37:10Z"}'
)


pytestmark = pytest.mark.usefixtures("frozen_clock")


def repo_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    (tmp_path / "data" / "failures").mkdir(parents=True)
    for name, data in files.items():
        (tmp_path / "data" / "failures" / name).write_bytes(data)
    return tmp_path


REFUSED = {
    "invalid-json": (GOOD + b"\n{not json}\n", 2, "invalid JSON"),
    "truncated-line": (GOOD + b"\n" + GOOD[:40] + b"\n", 2, "invalid JSON"),
    "invalid-utf8": (GOOD + b"\n" + B.replace(b"procs", b"pr\xffcs") + b"\n", 2, "invalid UTF-8"),
    "byte-order-mark": (b"\xef\xbb\xbf" + GOOD + b"\n", 1, "byte-order mark"),
    "nul-byte": (
        GOOD + b"\n" + B.replace(b"procs", b"pr\\u0000cs").replace(b"\\u0000", b"\x00") + b"\n",
        2,
        "NUL byte",
    ),
    "deep-nesting": (GOOD + b"\n" + b"[" * 50000 + b"]" * 50000 + b"\n", 2, "nested too deeply"),
    "nan": (GOOD + b"\n" + B.replace(b":6,", b":NaN,") + b"\n", 2, "NaN is not valid JSON"),
    "infinity": (GOOD + b"\n" + B.replace(b":6,", b":Infinity,") + b"\n", 2, "Infinity"),
    "duplicate-keys": (
        GOOD + b"\n" + B.replace(b'"exit_code":6,', b'"exit_code":6,"exit_code":8,') + b"\n",
        2,
        "duplicate key 'exit_code'",
    ),
    "wrong-types": (GOOD + b"\n" + B.replace(b":6,", b':"6",') + b"\n", 2, "valid integer"),
    "unknown-shape": (GOOD + b'\n{"schema_version":1,"hello":"world"}\n', 2, "unknown shape"),
    "future-version": (GOOD + b'\n{"schema_version":3,"recipe":"x"}\n', 2, "not supported"),
    "unknown-category": (
        GOOD + b"\n" + B.replace(b"deterministic", b"weird") + b"\n",
        2,
        "category: Input should be 'recipe_not_found'",
    ),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_broken_input_is_refused_with_file_and_line_and_nothing_written(tmp_path, kind, capsys):
    data, line, reason = REFUSED[kind]
    root = repo_with(tmp_path, {"homebrew.jsonl": data})
    before = snapshot(root)
    assert main(["up", "--repo", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"data/failures/homebrew.jsonl:{line}: " in err and reason in err, err
    assert "Traceback" not in err
    assert snapshot(root) == before
    assert main(["check", "--repo", str(root)]) == 1


@pytest.mark.parametrize("kind", ["directory", "symlink-out", "broken-queue"])
def test_wrong_kinds_of_file_are_refused(tmp_path, kind, capsys):
    root = repo_with(tmp_path, {"homebrew.jsonl": GOOD + b"\n"})
    if kind == "directory":
        (root / "data" / "failures" / "x.jsonl").mkdir()
    elif kind == "symlink-out":
        os.symlink("/etc/hostname", root / "data" / "failures" / "x.jsonl")
    else:
        (root / "data" / "queues").mkdir()
        (root / "data" / "queues" / "priority-queue.json").write_text('{"schema_version": 1,')
    before = snapshot(root)
    assert main(["up", "--repo", str(root)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("x.jsonl" in err or "priority-queue.json:1:" in err)
    assert snapshot(root) == before


MIGRATED = {
    "crlf": GOOD + b"\r\n" + B + b"\r\n",
    "empty-file": b"",
    "blank-lines": b"\n" + GOOD + b"\n\n  \n" + B + b"\n",
    "no-final-newline": GOOD + b"\n" + B,
    "several-mb-line": GOOD.replace(
        b"ada-url not found in registry", b"ada-url not found in registry" + b"x" * 3_000_000
    )
    + b"\n",
    "html-and-paths": GOOD.replace(b"homebrew:node", b"homebrew:../../etc/passwd").replace(
        b"Error:", b"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e Error:"
    )
    + b"\n",
    "unicode-separators": GOOD.replace(b"Error:", b"\\u2028\xe2\x80\xa9 Error:") + b"\n",
}


@pytest.mark.parametrize("kind", sorted(MIGRATED))
def test_odd_but_valid_input_migrates_and_round_trips(tmp_path, kind):
    root = repo_with(tmp_path, {"homebrew.jsonl": MIGRATED[kind]})
    before = snapshot(root)
    engine.up(Store(root))
    assert check_repo(Store(root)).ok
    engine.down(Store(root), "base")
    assert snapshot(root) == before


def test_quarantine_moves_bad_lines_into_the_ledger_and_back(fixture_repo, capsys):
    root = fixture_repo("bad")
    before = snapshot(root)
    assert main(["up", "--repo", str(root), "--quarantine"]) == 0
    out = capsys.readouterr().out
    assert "lines quarantined: 8" in out
    assert "quarantined data/failures/broken.jsonl:2: invalid JSON" in out
    assert check_repo(Store(root)).ok  # what is left is valid v2
    (run,) = run_files(root)
    detail = run.read_text()
    assert '"lines64"' in detail and '"lines"' in detail  # verbatim, invalid UTF-8 included
    lines = (root / "data/failures/broken.jsonl").read_bytes().split(b"\n")
    assert [i + 1 for i, x in enumerate(lines[:-1]) if not x] == [2, 3, 4, 5, 6, 7, 8, 9]
    engine.down(Store(root), "base")
    assert snapshot(root) == before


def test_disk_full_while_staging_writes_nothing_and_a_rerun_works(fixture_repo, monkeypatch):
    """The disk fills up as the 4th new version goes into the staging archive: the run
    writes nothing, and leaves nothing to fill the disk further."""
    root = fixture_repo("sample")
    before = snapshot(root)
    calls = {"n": 0}
    real_add = commit.Staging.add

    def full_disk(self, rel, data, replaces):
        calls["n"] += 1
        if calls["n"] == 4:
            self.fh.write = lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "Full"))
        return real_add(self, rel, data, replaces)

    monkeypatch.setattr(commit.Staging, "add", full_disk)
    with pytest.raises(RepoError, match="staged.bin: cannot write.*nothing was replaced"):
        engine.up(Store(root))
    monkeypatch.undo()
    assert calls["n"] == 4
    assert snapshot(root) == before
    assert leftovers(root) == []
    engine.up(Store(root))
    assert check_repo(Store(root)).ok
    engine.down(Store(root), "base")
    assert snapshot(root) == before


def test_read_only_folder_mid_commit_leaves_a_repo_up_or_down_can_settle(fixture_repo, monkeypatch):
    root = fixture_repo("sample")
    before = snapshot(root)
    real_open = os.open
    calls = {"n": 0}

    def read_only(path, flags, *a, **k):
        if "/data/failures/" in str(path) and flags & os.O_TRUNC:
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(RepoError, match="Read-only file system.*unfinished"):
        engine.up(Store(root))
    monkeypatch.undo()
    assert engine.status(Store(root))["unfinished"]["kind"] == "up"
    engine.down(Store(root), "base")  # finishes the run, then reverts it
    assert snapshot(root) == before


def test_two_runs_started_together_one_refuses_and_data_is_one_run(fixture_repo, tmp_path):
    root = fixture_repo("sample")
    cmd = [sys.executable, "-m", "migrate", "up", "-q", "--repo", str(root)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes in ([0, 0], [0, 3]), results
    if codes == [0, 3]:
        assert any("another migrate run holds data/.migrate/lock" in e for _, e in results)
    assert check_repo(Store(root)).ok
    (run,) = run_files(root)  # the second had nothing to do
    assert json.loads(run.read_text().split("\n")[0])["steps"] == ["0001", "0002", "0003"]
    assert not (root / "data" / ".migrate" / "lock").exists()


@pytest.mark.parametrize("direction", ["up", "down"])
def test_disk_full_while_writing_the_ledger_gives_the_staged_space_back(
    fixture_repo, monkeypatch, direction
):
    """Every file is staged and the run's ledger file cannot be written: nothing was
    replaced, so the staged copies (a whole run's worth of space) are removed at once and
    nothing is recorded."""
    root = fixture_repo("sample")
    before = snapshot(root)
    if direction == "down":
        engine.up(Store(root))
    at_start = snapshot(root)

    def full(self, run, entries):
        raise RepoError(f"{run.rel}: cannot write (No space left on device)")

    monkeypatch.setattr(Ledger, "write_pending", full)
    with pytest.raises(RepoError, match="No space left on device"):
        getattr(engine, direction)(Store(root), "head" if direction == "up" else "base")
    monkeypatch.undo()
    assert snapshot(root) == at_start
    assert leftovers(root) == []
    assert "unfinished" not in engine.status(Store(root))
    engine.up(Store(root))
    assert check_repo(Store(root)).ok
    engine.down(Store(root), "base")
    assert snapshot(root) == before


def test_a_run_killed_writing_the_first_ledger_leaves_nothing_at_base(fixture_repo):
    """Killed inside the ledger's first atomic write (temp file written, not renamed): the
    next run removes the temp file, and at base the ledger folder does not exist."""
    root = fixture_repo("sample")
    before = snapshot(root)
    ledger_dir = root / "data" / ".migrate"
    (ledger_dir / "runs").mkdir(parents=True)
    (ledger_dir / "runs" / ".000001-x.jsonl.pending.migrate-tmp").write_bytes(b'{"format": 2')
    queue_tmp = root / "data" / "queues" / ".priority-queue.json.migrate-tmp"
    queue_tmp.write_bytes(b"{")  # and one beside a data file (an interrupted `ingest`)
    engine.up(Store(root))
    assert not queue_tmp.exists()
    assert [p.name for p in ledger_dir.rglob(".*")] == [".gitignore"]  # (git's, kept)
    engine.down(Store(root), "base")
    assert snapshot(root) == before and not ledger_dir.exists()
    bad = fixture_repo("bad")  # a run that then stops at bad input leaves no folder
    (bad / "data" / ".migrate" / "runs").mkdir(parents=True)
    (bad / "data" / ".migrate" / "runs" / ".x.migrate-tmp").write_bytes(b"{")
    with pytest.raises(BadInputError):
        engine.up(Store(bad))
    assert not (bad / "data" / ".migrate").exists()


def test_a_failed_down_after_an_interrupted_up_leaves_the_finished_up(
    fixture_repo, tmp_path, monkeypatch
):
    """`up` stopped at its third rename (its run pending, its archive waiting); then
    `down` finishes that run first and fails on a full disk while staging its own files:
    the repo is as after an uninterrupted `up`, and nothing is left over."""
    root = fixture_repo("sample")
    reference = copy_repo(root, tmp_path / "ref")
    engine.up(Store(reference))
    up_stopped_in_the_third_write(root, monkeypatch)
    left = leftovers(root)  # (and the gather index it was writing: a cache, lost)
    assert [p for p in left if "/runs/.index-" not in p] == ["data/.migrate/staged.bin"]

    def full_disk(self, rel, data, replaces):
        raise RepoError(f"{commit.ARCHIVE}: cannot write (No space left on device)")

    with monkeypatch.context() as m:
        m.setattr(commit.Staging, "add", full_disk)
        with pytest.raises(RepoError, match="No space left"):
            engine.down(Store(root), "base")
    assert leftovers(root) == []
    assert data_only(snapshot(root)) == data_only(snapshot(reference))
    assert engine.up(Store(root)).plan.steps == ()


def test_what_a_killed_run_leaves_is_never_committed_and_every_command_says_so(
    fixture_repo, monkeypatch
):
    """`git add data` (the README's advice) after a kill commits neither the staging
    archive nor the temporary files nor the lock; `check` and `verify` agree that a run
    waits to be finished."""
    root = fixture_repo("sample")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    up_stopped_in_the_third_write(root, monkeypatch)
    assert (root / "data" / ".migrate" / "staged.bin").exists()
    (root / "data" / ".migrate" / "lock").write_text("{}")  # (as a kill leaves it)
    subprocess.run(["git", "add", "data"], cwd=root, check=True)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only"], cwd=root, capture_output=True, text=True
    ).stdout.split()
    assert [p for p in staged if p.startswith("data/.migrate/")] == [
        "data/.migrate/.gitignore"  # (the unfinished run too: another clone could not finish it)
    ]
    assert not check_repo(Store(root)).ok
    assert main(["verify", "--repo", str(root)]) == 1
    assert main(["check", "--repo", str(root), "-q"]) == 1


def test_a_file_a_kill_left_half_written_is_finished_and_a_later_save_is_kept(
    fixture_repo, tmp_path, monkeypatch
):
    """Files are written in place from the staging archive: killed mid-write, a file holds
    a prefix of its new version. The next run writes it again (the tree ends as after an
    uninterrupted `up`); a file another writer saved after the kill is left as saved
    (and then migrated as any new file)."""
    root = fixture_repo("sample")
    reference = copy_repo(root, tmp_path / "ref")
    before_root = copy_repo(root, tmp_path / "before")
    engine.up(Store(reference))
    before = snapshot(root)
    up_stopped_in_the_third_write(root, monkeypatch)
    after = snapshot(reference)
    cut = [
        rel
        for rel, data in snapshot(root).items()
        if rel.startswith("data/failures/") and data not in (before[rel], after[rel])
    ]
    assert len(cut) == 1 and after[cut[0]].startswith(snapshot(root)[cut[0]])
    engine.up(Store(root))
    assert data_only(snapshot(root)) == data_only(after)

    # the same kill, then another writer saves that file
    again = copy_repo(before_root, tmp_path / "again")
    up_stopped_in_the_third_write(again, monkeypatch)
    theirs = GOOD.rstrip(b"\n") + b"\n"
    (again / cut[0]).write_bytes(theirs)
    report = engine.up(Store(again))
    assert "saved or deleted by another writer" in report.settled and cut[0] in report.settled
    (line,) = (again / cut[0]).read_text().splitlines()  # theirs, then migrated by this `up`
    assert json.loads(line)["schema_version"] == 2 and "homebrew:node" in line
