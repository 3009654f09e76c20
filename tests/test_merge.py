"""The queue's merge driver (`migrate merge-driver`): a conflicting queue resolved entry
by entry, each value kept by its owner; real git merges of tsuku's save against a migrate
catch-up, both ways; and without the driver, the conflict named, never parsed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from freezegun import freeze_time

from migrate import codec, engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.merge import merge
from migrate.store import Store
from tests.conftest import FIXTURES, copy_repo
from tests.test_live_repo import apply_commit
from tests.tsuku_model import queue_maintain

QUEUE = "data/queues/priority-queue.json"


def entry(name, status="pending", **kw):
    e = {"name": name, "source": f"homebrew:{name}", "priority": 3, "status": status}
    e |= {"confidence": "auto", "disambiguated_at": None, "failure_count": 0}
    return e | {"next_retry_at": None} | kw


def doc(at, *entries, version=2):
    return codec.dumps_queue(
        {"schema_version": version, "updated_at": at, "entries": list(entries)}
    ).encode()


def merged(base, ours, theirs, mine=(set(), set())):
    out = merge(base, ours, theirs, mine)
    return json.loads(out.data), out


def test_each_side_keeps_what_it_changed_and_the_later_save_its_header():
    base = doc("2026-03-03T00:00:00Z", entry("a"), entry("b"), entry("c", "failed"))
    ours = doc("2026-03-03T01:00:00Z", entry("a", "blocked"), entry("b"), entry("c", "failed"))
    theirs = doc(  # tsuku: b failed with a backoff (markfailures), c retried, reordered
        "2026-03-03T02:00:00Z",
        entry("c", "pending"),
        entry("b", "failed", failure_count=2, next_retry_at="2026-03-03T04:00:00Z"),
        entry("a"),
    )
    d, out = merged(base, ours, theirs)
    assert d["updated_at"] == "2026-03-03T02:00:00Z"
    assert [e["name"] for e in d["entries"]] == ["c", "b", "a"]  # the side that reordered
    st = {e["name"]: e for e in d["entries"]}
    assert st["a"]["status"] == "blocked"  # ours changed it
    assert (st["b"]["status"], st["b"]["failure_count"]) == ("failed", 2)  # theirs
    assert st["b"]["next_retry_at"] == "2026-03-03T04:00:00Z"
    assert st["c"]["status"] == "pending"
    assert not out.counts.get("statuses both sides changed")


def test_a_status_both_sides_changed_goes_to_its_owner():
    base = doc("t0", entry("x"), entry("y"), entry("z", "blocked"))
    ours = doc("t1", entry("x", "blocked"), entry("y", "blocked"), entry("z", "pending"))
    theirs = doc("t2", entry("x", "failed"), entry("y", "success"), entry("z", "failed"))
    # x: ours is migrate's (its run set it): theirs wins, `up` derives x again afterwards;
    # y: success is decided elsewhere; z: neither side's is migrate's: the later save's
    mine = ({("homebrew:x", "blocked"), ("homebrew:y", "blocked")}, set())
    d, out = merged(base, ours, theirs, mine)
    st = {e["name"]: e["status"] for e in d["entries"]}
    assert st == {"x": "failed", "y": "success", "z": "failed"}
    assert out.counts["statuses both sides changed"] == 3
    assert any("kept failed (theirs: ours was migrate's" in n for n in out.notes)
    d, _ = merged(base, theirs, ours, (set(), mine[0]))  # the other way round
    assert {e["name"]: e["status"] for e in d["entries"]} == st  # (z: still the later save)


def test_entries_added_or_removed_on_one_side_and_nothing_lost():
    base = doc("t0", entry("a"), entry("b"), entry("c"))
    ours = doc("t1", entry("a", "blocked"), entry("b"), entry("c"))
    theirs = doc("t2", entry("b"), entry("d"))  # removed a and c, added d
    d, out = merged(base, ours, theirs)
    names = [e["name"] for e in d["entries"]]
    assert "c" not in names and "d" in names
    assert "a" in names  # removed by theirs, changed by ours: kept, and said
    assert any(n.startswith("homebrew:a: removed") for n in out.notes)


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=check,
    )


def _branches(tmp_path: Path, driver: bool) -> tuple[Path, dict]:
    """main: the sample, migrated. Branch `tsuku`: tsuku's update-queue-status run (the
    model of queue-maintain), which also decided one entry the catch-up on the other
    branch decides too. Branch `catchup`: a batch and `migrate up`."""
    root = copy_repo(FIXTURES / "sample", tmp_path / "repo")
    git(root, "init", "-q", "-b", "main")
    with freeze_time("2026-03-03T03:00:00Z"):
        engine.up(Store(root))
    if driver:
        assert main(["merge-driver", "--install", "--repo", str(root)]) == 0
        bin_dir = Path(shutil.which("migrate") or "").parent
        git(
            root,
            "config",
            "merge.migrate-queue.driver",
            f"{bin_dir / 'migrate'} merge-driver %O %A %B %P",
        )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "migrated")
    base = json.loads((root / QUEUE).read_text())

    git(root, "checkout", "-q", "-b", "catchup")
    apply_commit(root, FIXTURES / "replay" / "01-batch")
    with freeze_time("2026-03-03T04:45:00Z"):
        run = engine.up(Store(root))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "batch + migrate up")
    ours = json.loads((root / QUEUE).read_text())
    changed = [e["source"] for e, b in zip(ours["entries"], base["entries"], strict=True) if e != b]
    assert changed and run.run_id

    git(root, "checkout", "-q", "main")
    from datetime import UTC, datetime

    queue_maintain(root, datetime(2026, 3, 3, 5, 0, tzinfo=UTC))  # (reorders everything)
    theirs = json.loads((root / QUEUE).read_text())
    for e in theirs["entries"]:  # and decides one entry the catch-up decided too
        if e["source"] == changed[0]:
            e["status"], e["next_retry_at"] = "failed", "2026-03-03T06:00:00.5Z"
    (root / QUEUE).write_text(codec.dumps_queue(theirs))
    git(root, "commit", "-q", "-am", "update-queue-status")
    return root, {"base": base, "ours": ours, "theirs": theirs, "contested": changed[0]}


def _expected(sides: dict) -> dict[str, dict]:
    """Per entry, independently: tsuku's values win where tsuku changed them, migrate's
    statuses stay where only migrate changed them."""
    base = {e["source"]: e for e in sides["base"]["entries"]}
    mig = {e["source"]: e for e in sides["ours"]["entries"]}
    out = {}
    for e in sides["theirs"]["entries"]:
        pid = e["source"]
        want = dict(e)
        if e["status"] == base[pid]["status"]:
            want["status"] = mig[pid]["status"]
        out[pid] = want
    return out


@pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("migrate") is None,
    reason="git and an installed migrate are needed",
)
@pytest.mark.parametrize("into", ["main", "catchup"])
def test_a_real_merge_of_tsukus_save_and_a_catch_up_with_the_driver(tmp_path, into):
    root, sides = _branches(tmp_path, driver=True)
    other = "catchup" if into == "main" else "main"
    git(root, "checkout", "-q", into)
    result = git(root, "merge", "-q", other, "-m", "merge", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert git(root, "diff", "--name-only", "--diff-filter=U").stdout == ""  # none left
    doc = json.loads((root / QUEUE).read_text())
    assert [e["source"] for e in doc["entries"]] == [
        e["source"] for e in sides["theirs"]["entries"]
    ]
    got = {e["source"]: e for e in doc["entries"]}
    assert got == _expected(sides)  # every entry: no upstream value lost
    assert got[sides["contested"]]["status"] == "failed"  # tsuku's, over migrate's
    # then `up` derives again: migrate's statuses back where tsuku's rules keep them
    engine.up(Store(root))
    assert check_repo(Store(root), at_head=True).ok
    assert engine.up(Store(root)).plan.steps == ()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_without_the_driver_the_conflict_is_named_and_resolve_settles_it(tmp_path, capsys):
    root, sides = _branches(tmp_path, driver=False)
    result = git(root, "merge", "-q", "catchup", "-m", "merge", check=False)
    assert result.returncode != 0
    assert QUEUE in git(root, "diff", "--name-only", "--diff-filter=U").stdout
    for cmd in (["status"], ["check"], ["up"]):
        assert main([*cmd, "--repo", str(root)]) in (1, 2)
        out = capsys.readouterr()
        text = out.out + out.err
        assert "unresolved git merge conflict" in text and "merge-driver --resolve" in text
    import os

    here = os.getcwd()
    os.chdir(root)
    try:
        assert main(["merge-driver", "--resolve", QUEUE]) == 0
    finally:
        os.chdir(here)
    got = {e["source"]: e for e in json.loads((root / QUEUE).read_text())["entries"]}
    assert got == _expected(sides)
