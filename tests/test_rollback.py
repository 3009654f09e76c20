"""Rollback with other writers (design.md, "Rollback with other writers"): `down` gives a
file nobody touched since migrate wrote it its exact bytes back, reverts a queue another
writer saved since entry by entry, leaves a failure file another writer added, replaced
or deleted as they left it; and the ledger survives git branches and merges.

The real replay (`../shared/corpus/replay-2026-03-03/`) runs when the corpus is there;
the sample repo with real batch files of that replay (`fixtures/replay/`) and queues saved
the way tsuku's struct saves them carry the suite everywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import DataChanged
from migrate.store import Store
from tests.conftest import CORPUS, FIXTURES, copy_repo, corpus_snapshot
from tests.helpers import reseal
from tests.test_live_repo import apply_commit, failure_files, queue_statuses, tsuku_saves_queue

QUEUE = Path("data/queues/priority-queue.json")


def tree(root: Path) -> dict[str, bytes]:
    """Every file of a repo but git's own, by path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def blocked_sources(root: Path) -> list[str]:
    doc = json.loads((root / QUEUE).read_bytes())
    return [e["source"] for e in doc["entries"] if e["status"] == "blocked"]


# ------------------------------------------------------------------ the real replay


def _replay(tmp_path: Path, name: str, between=None, last_up: int = 24) -> tuple[Path, Path]:
    """2026-03-02 migrated, then each replayed commit followed by `migrate up` (up to the
    ``last_up``-th); and upstream's tree after the same commits (no migrate).
    ``between(i, repo)`` runs after the i-th commit's catch-up."""
    base = corpus_snapshot("2026-03-02")
    live = copy_repo(base, tmp_path / name)
    upstream = copy_repo(base, tmp_path / f"{name}-upstream")
    engine.up(Store(live))
    commits = sorted(p for p in (CORPUS / "replay-2026-03-03").iterdir() if p.is_dir())
    for i, commit in enumerate(commits):
        apply_commit(live, commit)
        apply_commit(upstream, commit)
        if i >= last_up:
            continue
        engine.up(Store(live))
        if between is not None:
            between(i, live)
    return live, upstream


def test_the_real_replay_rolled_back_to_base_is_upstreams_final_tree(tmp_path):
    live, upstream = _replay(tmp_path, "live")
    plan = engine.down(Store(live), "base", dry_run=True)
    assert set(plan.rules) == {"exact bytes back"} and not plan.refused  # none but exact
    engine.down(Store(live), "base")
    assert tree(live) == tree(upstream)  # upstream's d9214a8ec, byte for byte
    assert not (live / "data" / ".migrate").exists()


def test_upstreams_last_commits_not_caught_up_are_left_as_upstream_wrote_them(tmp_path):
    """The last three commits (a batch, queue saves by upstream's jobs at v1: not read
    from migrate's output) land after the last `migrate up`: `down --to base` leaves them
    as written and reverts the rest, which is upstream's final tree again."""
    live, upstream = _replay(tmp_path, "late", last_up=21)
    plan = engine.down(Store(live), "base", dry_run=True)
    left = {rel for rel, rule, _ in plan.rule_files if rule == "left as its writer wrote it"}
    assert "data/queues/priority-queue.json" in left and not plan.refused
    engine.down(Store(live), "base")
    assert tree(live) == tree(upstream)


def test_the_real_replay_with_a_rollback_to_0002_on_the_way_ends_the_same(tmp_path):
    def down_and_up(i: int, repo: Path) -> None:
        if i == 11:
            engine.down(Store(repo), "0002")
            assert engine.status(Store(repo))["current"] == "0002"
            engine.up(Store(repo))

    straight, _ = _replay(tmp_path, "straight")
    detour, upstream = _replay(tmp_path, "detour", down_and_up)
    assert failure_files(detour) == failure_files(straight)
    assert queue_statuses(detour) == queue_statuses(straight)
    engine.down(Store(detour), "base")
    assert tree(detour) == tree(upstream)


# ------------------------------------------------------------------ other writers, no catch-up


def test_a_queue_saved_by_tsuku_since_the_last_run_is_reverted_entry_by_entry(
    fixture_repo, tmp_path
):
    """tsuku's job reads the migrated queue, changes some statuses and saves it through
    its struct (every blocked_by dropped). `down` takes back only what migrate set and
    still holds; the job's statuses stay. The result is the pristine queue as that job
    would have saved it."""
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    live = fixture_repo("sample")
    engine.up(Store(live))
    blocked = blocked_sources(live)
    assert len(blocked) >= 2
    theirs = {blocked[0]: "success", "github:sharkdp/bat": "failed"}  # one migrate had set
    tsuku_saves_queue(live / QUEUE, theirs, "2026-03-03T04:44:43Z")

    plan = engine.down(Store(live), "base", dry_run=True)
    (queue,) = [f for f in plan.rule_files if f[0] == QUEUE.as_posix()]
    _, rule, counts = queue
    assert rule == "reverted entry by entry"
    assert counts["status back"] == len(blocked) - 1
    assert counts["status kept as their writer set it"] == 1
    assert main(["down", "--repo", str(live), "--to", "base", "--dry-run"]) == 0

    engine.down(Store(live), "base")
    tsuku_saves_queue(pristine / QUEUE, theirs, "2026-03-03T04:44:43Z")
    assert tree(live) == tree(pristine)


def test_what_a_writer_carried_over_of_migrates_queue_stays_migrates_through_catch_ups(
    fixture_repo, tmp_path
):
    """tsuku's job read the migrated queue (its save keeps schema_version 2 as read) and
    changed one status; `up` catches it up, then a batch and another catch-up. `down --to
    base` gives the queue as the job would have saved the original: its status change,
    none of migrate's."""
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    live = fixture_repo("sample")
    engine.up(Store(live))
    theirs = ({blocked_sources(live)[0]: "success"}, "2026-03-03T04:44:43Z")
    tsuku_saves_queue(live / QUEUE, *theirs)
    engine.up(Store(live))
    assert blocked_sources(live) and check_repo(Store(live), at_head=True).ok
    for root in (live, pristine):
        apply_commit(root, FIXTURES / "replay" / "03-batch")
    engine.up(Store(live))
    engine.down(Store(live), "base")
    tsuku_saves_queue(pristine / QUEUE, *theirs)
    assert tree(live) == tree(pristine)


def test_blockers_migrate_took_out_are_not_put_back_into_a_save_that_drops_them(
    fixture_repo, tmp_path
):
    """Entries blocked (with blocked_by) before migrate, which step 0003 moves out of
    blocked: after tsuku's save (no blocked_by anywhere), a rollback puts their status
    back but not the blockers the struct drops: as the save of the original would be."""
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    live = fixture_repo("sample")
    for root in (live, pristine):
        doc = json.loads((root / QUEUE).read_bytes())
        doc["schema_version"] = 2  # (blocked_by in a queue: v2)
        for e in doc["entries"]:
            if e["status"] == "pending":
                e["status"], e["blocked_by"] = "blocked", ["zz-gone"]
        (root / QUEUE).write_text(json.dumps(doc, indent=2) + "\n")
    engine.up(Store(live))
    after = json.loads((live / QUEUE).read_bytes())["entries"]
    assert any(e["status"] != "blocked" and e["source"] for e in after)  # some moved out
    tsuku_saves_queue(live / QUEUE, at="2026-03-03T04:44:43Z")
    engine.down(Store(live), "base")
    tsuku_saves_queue(pristine / QUEUE, at="2026-03-03T04:44:43Z")
    assert tree(live) == tree(pristine)


def test_a_new_batch_and_a_queue_save_after_the_last_run_are_left_to_their_writers(
    fixture_repo, tmp_path
):
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    live = fixture_repo("sample")
    engine.up(Store(live))
    for root in (live, pristine):
        apply_commit(root, FIXTURES / "replay" / "01-batch")
    tsuku_saves_queue(live / QUEUE, at="2026-03-03T04:44:43Z")
    tsuku_saves_queue(pristine / QUEUE, at="2026-03-03T04:44:43Z")
    plan = engine.down(Store(live), "base", dry_run=True)
    theirs = sorted(rel for rel, rule, _ in plan.rule_files if rule.startswith("left"))
    assert theirs == sorted(
        f"data/failures/{p.name}"
        for p in (FIXTURES / "replay" / "01-batch" / "data" / "failures").iterdir()
    )
    engine.down(Store(live), "base")
    assert tree(live) == tree(pristine)


def test_down_refuses_only_where_a_revert_would_overwrite_their_values(fixture_repo):
    """A queue saved since by another writer, where the run that wrote it did not record
    the values it set (an older migrate): refused, naming the file, nothing reverted;
    `--dry-run` shows the same stop; `--force` leaves that file as it is."""
    live = fixture_repo("migrated-0.3.1")  # (format 2, where migrate 0.2's patches were)
    for run in (live / "data" / ".migrate" / "runs").glob("*[0-9a-f].jsonl"):
        lines = run.read_bytes().splitlines()
        entries = [json.loads(x) for x in lines[1:]]
        for e in entries:
            for st in e["steps"]:
                if st["id"] == "0003":
                    st["patch"].pop("now", None)  # as migrate 0.2 wrote it
        run.write_bytes(b"\n".join([lines[0], *(json.dumps(e).encode() for e in entries)]) + b"\n")
        reseal(run, strip=True)  # (migrate 0.2 did not seal its runs either)
    tsuku_saves_queue(live / QUEUE, at="2026-03-03T04:44:43Z")
    before = tree(live)
    plan = engine.down(Store(live), "base", dry_run=True)
    assert [r.split(":")[0] for r in plan.refused] == [QUEUE.as_posix()]
    assert main(["down", "--repo", str(live), "--to", "base", "--dry-run"]) == 5
    with pytest.raises(DataChanged, match="priority-queue.json: step 0003 cannot be reverted"):
        engine.down(Store(live), "base")
    assert tree(live) == before  # all or nothing
    saved = (live / QUEUE).read_bytes()
    engine.down(Store(live), "base", force=True)
    assert (live / QUEUE).read_bytes() == saved
    assert check_repo(Store(live)).ok


# ------------------------------------------------------------------ found in review


class _Kill(Exception):
    pass


def test_finishing_an_interrupted_run_never_overwrites_a_later_save(fixture_repo):
    """A run killed after its ledger run was written, before the queue was replaced;
    tsuku saves the queue meanwhile. The next run finishes the interrupted one but leaves
    their save (it replaces only the bytes it had read), says so, and catches it up."""
    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "01-batch")  # (statuses move: the queues too)

    def kill(i: int) -> None:
        if i == 0:  # (failure files first: the queues are still as they were)
            raise _Kill

    with pytest.raises(_Kill):
        engine.up(Store(live), after_each=kill)
    tsuku_saves_queue(live / QUEUE, {"github:sharkdp/bat": "failed"}, "2026-03-03T05:52:06Z")
    saved = (live / QUEUE).read_bytes()
    run = engine.up(Store(live))
    assert "saved or deleted by another writer since it was interrupted" in run.settled
    assert QUEUE.as_posix() in run.settled
    statuses = {
        e["source"]: e["status"] for e in json.loads((live / QUEUE).read_bytes())["entries"]
    }
    assert statuses["github:sharkdp/bat"] == "failed"  # their change, caught up, not lost
    assert (live / QUEUE).read_bytes() != saved  # (derived again from it)
    assert check_repo(Store(live), at_head=True).ok


def test_a_rollback_never_writes_a_queue_check_refuses(fixture_repo):
    """A writer set blockers of its own on an entry migrate had blocked: the entry is
    theirs (status and blockers); the queue stays valid."""
    live = fixture_repo("sample")
    engine.up(Store(live))
    doc = json.loads((live / QUEUE).read_bytes())
    entry = next(e for e in doc["entries"] if e["status"] == "blocked")
    entry["blocked_by"] = ["their-own-blocker"]
    (live / QUEUE).write_text(json.dumps(doc, indent=2) + "\n")
    plan = engine.down(Store(live), "base", dry_run=True)
    (counts,) = [c for rel, _, c in plan.rule_files if rel == QUEUE.as_posix()]
    assert counts["blocked_by kept as their writer set it"] == 1
    engine.down(Store(live), "base")
    assert check_repo(Store(live)).ok
    after = {e["source"]: e for e in json.loads((live / QUEUE).read_bytes())["entries"]}
    assert after[entry["source"]]["status"] == "blocked"
    assert after[entry["source"]]["blocked_by"] == ["their-own-blocker"]


def test_a_save_made_while_a_run_replaces_files_is_kept(fixture_repo):
    """tsuku saves the queue after `up` read it and before `up` replaced it: the run
    leaves their save, says so, and the next `up` catches it up."""
    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "01-batch")  # (changes both queues)

    def save(i: int) -> None:
        if i == 0:  # (failure files first: the queues are not replaced yet)
            saved = {"github:sharkdp/bat": "failed"}
            tsuku_saves_queue(live / QUEUE, saved, "2026-03-03T06:00:00Z")

    run = engine.up(Store(live), after_each=save)
    assert run.theirs == [QUEUE.as_posix()]
    assert b'"blocked_by"' not in (live / QUEUE).read_bytes()  # their save, as they saved it
    engine.up(Store(live))
    entries = json.loads((live / QUEUE).read_bytes())["entries"]
    assert {e["source"]: e["status"] for e in entries}["github:sharkdp/bat"] == "failed"
    assert check_repo(Store(live), at_head=True).ok


def test_a_killed_rollback_finished_after_a_save_still_takes_migrates_values_out(
    fixture_repo, tmp_path
):
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    live = fixture_repo("sample")
    engine.up(Store(live))

    def kill(i: int) -> None:
        raise _Kill

    with pytest.raises(_Kill):
        engine.down(Store(live), "base", after_each=kill)
    theirs = ({blocked_sources(live)[0]: "success"}, "2026-03-03T04:44:43Z")
    tsuku_saves_queue(live / QUEUE, *theirs)  # (read from migrate's queue: still there)
    engine.down(Store(live), "base")  # finishes the killed one: the save is kept, as
    tsuku_saves_queue(pristine / QUEUE, *theirs)  # a live rollback would keep it
    assert tree(live) == tree(pristine)


def test_a_listed_file_deleted_after_a_kill_does_not_stop_the_next_run(fixture_repo):
    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "01-batch")  # (statuses move: the queues too)

    def kill(i: int) -> None:
        raise _Kill

    with pytest.raises(_Kill):
        engine.up(Store(live), after_each=kill)
    (live / "data" / "queues" / "priority-queue-homebrew.json").unlink()
    run = engine.up(Store(live))
    assert "kept as they left them" in run.settled
    assert not (live / "data" / "queues" / "priority-queue-homebrew.json").exists()


def test_a_dry_run_while_a_killed_run_waits_says_so_instead_of_a_plan(fixture_repo, capsys):
    """`up` killed half way: `down --dry-run` said "nothing to do: at base" while `down`
    then finished the killed run and reverted a step; `up --dry-run` planned from the
    half-replaced files. Both dry runs now say the run will be finished first (exit 5),
    write nothing, and the command they name finishes it."""
    live = fixture_repo("sample")

    def kill(i: int) -> None:
        if i == 3:
            raise _Kill

    with pytest.raises(_Kill):
        engine.up(Store(live), after_each=kill)
    before = tree(live)
    for args in (["down", "--dry-run"], ["up", "--dry-run"], ["up", "--diff"]):
        assert main([*args, "--repo", str(live)]) == 5, args
        err = capsys.readouterr().err
        assert "was interrupted" in err and "migrate up --to 0003" in err
    assert tree(live) == before
    assert main(["up", "--to", "0003", "--repo", str(live), "-q"]) == 0
    assert main(["up", "--dry-run", "--repo", str(live), "-q"]) == 0
    assert "nothing to do" in capsys.readouterr().out
