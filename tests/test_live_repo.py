"""The running pipeline: after the backfill, tsuku's writers keep adding v1 failure files
and saving the queue through a struct that drops ``blocked_by`` (formats.md §7). `migrate
up` after each of their commits catches up what they wrote, and ends where a fresh
migration of the same tree ends.

The real replay (`../shared/corpus/replay-2026-03-03/`: 24 upstream commits after the
2026-03-02 snapshot) runs when the corpus is there; `fixtures/replay/` (real batch files
of that replay, on the sample repo) and a queue saved the way tsuku's struct saves it carry
the suite everywhere else.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.engine import index
from migrate.repo import DataRepo
from tests.conftest import CORPUS, FIXTURES, copy_repo, corpus_snapshot
from tests.helpers import run_files


def apply_commit(root: Path, commit: Path) -> None:
    """One upstream commit onto a working tree: its data/ files as they were written, and
    the files it deleted (``deleted.txt``, one path per line), if any."""
    shutil.copytree(commit / "data", root / "data", dirs_exist_ok=True)
    deleted = commit / "deleted.txt"
    if deleted.exists():
        for rel in deleted.read_text().split():
            (root / rel).unlink(missing_ok=True)


def tsuku_saves_queue(path: Path, status: dict[str, str] | None = None, at: str = "") -> None:
    """The queue as tsuku's jobs save it (formats.md §7): their struct keeps
    ``schema_version`` as read, drops every other key of an entry (``blocked_by``), sets
    ``updated_at`` to now, 2-space indented; ``status``: the statuses the job changed."""
    doc = json.loads(path.read_bytes())
    keep = ("name", "source", "priority", "status", "confidence", "disambiguated_at")
    keep += ("failure_count", "next_retry_at")
    entries = []
    for e in doc["entries"]:
        e = {k: e[k] for k in keep if k in e}
        e["status"] = (status or {}).get(e["source"], e["status"])
        entries.append(e)
    out = {"schema_version": doc["schema_version"], "updated_at": at, "entries": entries}
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


def failure_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data" / "failures").iterdir())}


def queue_statuses(root: Path) -> dict[str, dict[str, tuple]]:
    out = {}
    for p in sorted((root / "data" / "queues").glob("priority-queue*.json")):
        doc = json.loads(p.read_bytes())
        entries = doc.get("entries", doc.get("packages", []))
        out[p.name] = {
            e.get("source") or e["id"]: (e["status"], e.get("blocked_by", "-")) for e in entries
        }
    return out


def catch_up(root: Path) -> engine.RunReport:
    run = engine.up(DataRepo(root))
    report = check_repo(DataRepo(root), at_head=True)
    assert report.ok, [str(p) for p in report.problems]
    assert engine.up(DataRepo(root)).plan.steps == ()  # idempotent
    return run


def test_the_real_replay_caught_up_commit_by_commit_equals_a_fresh_migration(tmp_path):
    base = corpus_snapshot("2026-03-02")
    commits = sorted(p for p in (CORPUS / "replay-2026-03-03").iterdir() if p.is_dir())
    live = copy_repo(base, tmp_path / "live")
    engine.up(DataRepo(live))
    caught = 0
    for commit in commits:
        apply_commit(live, commit)
        assert not check_repo(DataRepo(live), at_head=True).ok  # behind until `up`
        run = catch_up(live)
        caught += sum(sr.changed_files for sr in run.steps if sr.step.id == "0001")
    arrived = [p for c in commits for p in (c / "data" / "failures").glob("*.jsonl")]
    assert caught == sum(p.stat().st_size > 0 for p in arrived) == 21  # each batch's files
    fresh = copy_repo(base, tmp_path / "fresh")
    for commit in commits:
        apply_commit(fresh, commit)
    engine.up(DataRepo(fresh))
    assert failure_files(live) == failure_files(fresh)
    assert queue_statuses(live) == queue_statuses(fresh)
    blocked = [v for q in queue_statuses(live).values() for v in q.values() if v[0] == "blocked"]
    assert blocked and all(v[1] != "-" for v in blocked)  # the dashboard's blockers


def test_a_batch_and_tsukus_queue_saves_are_caught_up_like_a_fresh_migration(
    fixture_repo, tmp_path
):
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    queue = live / "data" / "queues" / "priority-queue.json"
    blocked = [e for e in json.loads(queue.read_bytes())["entries"] if e["status"] == "blocked"]
    assert blocked and all("blocked_by" in e for e in blocked)

    # a batch: new v1 files (real ones, from the replay), then a reconcile job's save
    apply_commit(live, FIXTURES / "replay" / "01-batch")
    st = engine.status(DataRepo(live))
    assert st["behind"]["new"] == 3 and st["behind"]["files"] >= 3
    assert {rel for rel, _ in engine.verify(DataRepo(live))} >= {
        "data/failures/homebrew-2026-03-03T04-37-47Z.jsonl"
    }
    catch_up(live)
    success = blocked[0]["source"]  # the job saw the recipe land
    tsuku_saves_queue(queue, {success: "success"}, "2026-03-03T04:44:43Z")
    report = check_repo(DataRepo(live))
    assert report.ok and report.behind["queues"] == 1  # valid as its writers write it
    assert main(["status", "--repo", str(live), "--check"]) == 1
    catch_up(live)
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    catch_up(live)
    after = json.loads(queue.read_bytes())["entries"]
    assert {e["source"]: e["status"] for e in after}[success] == "success"  # theirs stays
    assert all("blocked_by" in e for e in after if e["status"] == "blocked")

    fresh = copy_repo(FIXTURES / "sample", tmp_path / "fresh")
    for commit in ("01-batch", "03-batch"):
        apply_commit(fresh, FIXTURES / "replay" / commit)
    shutil.copyfile(queue, fresh / "data" / "queues" / "priority-queue.json")
    tsuku_saves_queue(fresh / "data" / "queues" / "priority-queue.json")  # (as saved)
    engine.up(DataRepo(fresh))
    assert failure_files(live) == failure_files(fresh)
    assert queue_statuses(live) == queue_statuses(fresh)
    kinds = [json.loads(p.read_bytes().split(b"\n", 1)[0]) for p in run_files(live)]
    assert [(k["from"], k["to"]) for k in kinds][1:] == [("0003", "0003")] * 3


def test_a_new_failure_file_and_nothing_else_rewrites_only_it_and_the_queues(fixture_repo):
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    run = catch_up(live)
    counts = {sr.step.id: (sr.files_read, sr.changed_files) for sr in run.steps}
    assert counts["0001"] == (2, 2) and counts["0002"][0] == 2
    assert counts["0003"][0] == 2  # both queues derived again


def test_a_corrupt_or_missing_index_is_rebuilt_never_trusted(fixture_repo, tmp_path):
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    (idx,) = (live / "data" / ".migrate" / "runs").glob(f"*{index.SUFFIX}")
    reference = copy_repo(FIXTURES / "sample", tmp_path / "reference")
    engine.up(DataRepo(reference))
    # entries that lie (a blocker renamed) but stay valid JSON: the sum no longer holds
    queue = json.loads((live / "data" / "queues" / "priority-queue.json").read_bytes())
    name = next(e for e in queue["entries"] if e.get("blocked_by"))["blocked_by"][0]
    lie = idx.read_bytes().replace(f'"{name}"'.encode(), b'"zzz-lie"')
    assert lie != idx.read_bytes()
    idx.write_bytes(lie)
    for root in (live, reference):
        apply_commit(root, FIXTURES / "replay" / "01-batch")
        catch_up(root)
    assert queue_statuses(live) == queue_statuses(reference)
    assert "zzz-lie" not in json.dumps(queue_statuses(live))
    idx.unlink()
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    apply_commit(reference, FIXTURES / "replay" / "03-batch")
    catch_up(live)
    catch_up(reference)
    assert queue_statuses(live) == queue_statuses(reference)


def test_a_catch_up_reads_the_batch_not_the_history(fixture_repo, monkeypatch):
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    parsed: list[str] = []
    from migrate.engine import forward

    original = forward.file_rows

    def counting(rel, data, *args, **kwargs):
        parsed.append(rel)
        return original(rel, data, *args, **kwargs)

    monkeypatch.setattr(forward, "file_rows", counting)
    engine.up(DataRepo(live), jobs=1)
    assert sorted(set(parsed)) == [
        "data/failures/github-2026-03-03T05-49-35Z.jsonl",
        "data/failures/homebrew-2026-03-03T05-49-35Z.jsonl",
    ]


def test_a_failure_file_another_writer_deleted_is_caught_up_once(fixture_repo):
    """Status derived again without it, the ledger forgets it: the repo is at head after
    that one run, and a second `up` plans nothing."""
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    victim = sorted((live / "data" / "failures").glob("homebrew-*.jsonl"))[0]
    victim.unlink()
    assert engine.status(DataRepo(live))["behind"]["gone"] == 1
    run = engine.up(DataRepo(live))
    assert [s.id for s in run.plan.steps] == ["0003"]
    assert engine.status(DataRepo(live))["behind"]["files"] == 0
    assert engine.up(DataRepo(live)).plan.steps == ()
    assert main(["status", "--repo", str(live), "--check"]) == 0
    engine.down(DataRepo(live), "base")  # (nothing to give back for it: still deleted)
    assert not victim.exists() and not (live / "data" / ".migrate").exists()


def test_a_batch_written_while_a_run_works_is_left_for_the_next_run(
    fixture_repo, tmp_path, monkeypatch
):
    """The orchestrator adds its batch's files after `up` listed the folder and before it
    gathered what the steps need: the run works on the files it found (no crash), the new
    ones stay as their writer wrote them, `status` counts them behind, the next `up`
    catches them up like a fresh migration would."""
    live = fixture_repo("sample")
    reference = copy_repo(FIXTURES / "sample", tmp_path / "reference")
    engine.up(DataRepo(live))
    apply_commit(live, FIXTURES / "replay" / "01-batch")
    from migrate.engine import forward

    original = forward.scan

    def scan_then_a_batch_lands(*args, **kwargs):
        found = original(*args, **kwargs)
        apply_commit(live, FIXTURES / "replay" / "03-batch")
        return found

    monkeypatch.setattr(forward, "scan", scan_then_a_batch_lands)
    run = engine.up(DataRepo(live))
    monkeypatch.setattr(forward, "scan", original)
    assert run.theirs == []  # (nothing the run read was rewritten)
    batch = sorted((FIXTURES / "replay" / "03-batch" / "data" / "failures").iterdir())
    for p in batch:  # (as the orchestrator wrote them: v1)
        assert (live / "data" / "failures" / p.name).read_bytes() == p.read_bytes()
    behind = engine.status(DataRepo(live))["behind"]
    assert behind["new"] == len(batch)  # (and the queues, to derive again with them)
    engine.up(DataRepo(live))
    for commit in ("01-batch", "03-batch"):
        apply_commit(reference, FIXTURES / "replay" / commit)
    engine.up(DataRepo(reference))
    assert failure_files(live) == failure_files(reference)
    assert queue_statuses(live) == queue_statuses(reference)
    assert check_repo(DataRepo(live), at_head=True).ok


def test_status_says_what_is_behind_in_numbers_that_add_up(fixture_repo, capsys):
    """After a batch: the new files, plus the queues whose status they change (the line
    did not count those, so its numbers did not add up); `-v` lists each file."""
    live = fixture_repo("sample")
    engine.up(DataRepo(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    b = engine.status(DataRepo(live))["behind"]
    assert b["new"] == 2 and b["files"] == b["new"] + b["rewritten"] + b["derive"] > 2
    assert main(["status", "--repo", str(live), "-v"]) == 0
    out = capsys.readouterr().out
    assert f"behind:  {b['files']} file(s) (2 new, 0 rewritten by other writers," in out
    listed = [line.split(": ", 1) for line in out.splitlines() if line.startswith("  ")]
    assert sorted(rel for _, rel in listed) == sorted(rel for rel, _ in b["list"])
    assert {why.strip() for why, _ in listed} == {"new", "derive"}
