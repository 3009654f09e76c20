"""The running pipeline: after the backfill, tsuku's writers keep adding v1 failure files
and saving the queue through their struct (formats.md §7). `migrate up` after each of
their commits catches up what they wrote, writes nothing when they wrote nothing it must
derive from, and ends where a fresh migration of the same tree ends.

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
from migrate.store import Store, cache
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


def queue_statuses(root: Path) -> dict[str, dict[str, str]]:
    out = {}
    for p in sorted((root / "data" / "queues").glob("priority-queue*.json")):
        doc = json.loads(p.read_bytes())
        entries = doc.get("entries", doc.get("packages", []))
        assert not any("blocked_by" in e for e in entries)  # (its writer's struct has none)
        out[p.name] = {e.get("source") or e["id"]: e["status"] for e in entries}
    return out


def catch_up(root: Path) -> engine.RunReport:
    run = engine.up(Store(root))
    report = check_repo(Store(root), at_head=True)
    assert report.ok, [str(p) for p in report.problems]
    assert engine.up(Store(root)).plan.steps == ()  # idempotent
    return run


def test_the_real_replay_caught_up_commit_by_commit_equals_a_fresh_migration(tmp_path):
    base = corpus_snapshot("2026-03-02")
    commits = sorted(p for p in (CORPUS / "replay-2026-03-03").iterdir() if p.is_dir())
    live = copy_repo(base, tmp_path / "live")
    engine.up(Store(live))
    caught = 0
    for commit in commits:
        apply_commit(live, commit)
        if (commit / "data" / "failures").is_dir():
            assert not check_repo(Store(live), at_head=True).ok  # behind until `up`
        run = catch_up(live)
        caught += sum(sr.changed_files for sr in run.steps if sr.step.id == "0001")
    arrived = [p for c in commits for p in (c / "data" / "failures").glob("*.jsonl")]
    assert caught == sum(p.stat().st_size > 0 for p in arrived) == 21  # each batch's files
    fresh = copy_repo(base, tmp_path / "fresh")
    for commit in commits:
        apply_commit(fresh, commit)
    engine.up(Store(fresh))
    assert failure_files(live) == failure_files(fresh)
    assert queue_statuses(live) == queue_statuses(fresh)
    from migrate.views import queue_views

    blocked = [v for vs in queue_views(Store(live)).queues.values() for v in vs]
    blocked = [v for v in blocked if v.status == "blocked"]
    assert blocked and sum(bool(v.blockers) for v in blocked) > len(blocked) / 2


def test_a_batch_and_tsukus_queue_saves_are_caught_up_like_a_fresh_migration(
    fixture_repo, tmp_path
):
    live = fixture_repo("sample")
    engine.up(Store(live))
    queue = live / "data" / "queues" / "priority-queue.json"
    entries = json.loads(queue.read_bytes())["entries"]
    blocked = [e for e in entries if e["status"] == "blocked"]
    assert blocked and not any("blocked_by" in e for e in entries)

    # a batch: new v1 files (real ones, from the replay), then a reconcile job's save
    apply_commit(live, FIXTURES / "replay" / "01-batch")
    st = engine.status(Store(live))
    assert st["behind"]["failures"] == 3 and st["behind"]["files"] >= 3
    new = "data/failures/homebrew-2026-03-03T04-37-47Z.jsonl"
    assert new in {rel for rel, _ in engine.verify(Store(live))[0]}
    catch_up(live)
    # tsuku's save with nothing for migrate to derive: at head, and nothing written
    tsuku_saves_queue(queue, None, "2026-03-03T04:40:00Z")
    saved = queue.read_bytes()
    assert check_repo(Store(live), at_head=True).ok
    assert main(["status", "--repo", str(live), "--check"]) == 0
    assert main(["verify", "--repo", str(live)]) == 0
    assert engine.up(Store(live)).plan.steps == () and queue.read_bytes() == saved
    # a save where a blocker's recipe landed (the job set it success): its dependents
    # are requeued by the next run, and the job's own value stays
    from migrate.views import queue_views

    views = queue_views(Store(live)).queues[queue.relative_to(live).as_posix()]
    sources = {v.name: v.package_id for v in views}
    v = next(
        v
        for v in views
        if v.status == "blocked" and v.blockers and all(n in sources for n in v.blockers)
    )
    freed = {"source": v.package_id}
    marks = {sources[n]: "success" for n in v.blockers}
    tsuku_saves_queue(queue, marks, "2026-03-03T04:44:43Z")
    report = check_repo(Store(live))
    assert report.ok and report.behind["queues"] == 1  # valid as its writer wrote it
    assert main(["status", "--repo", str(live), "--check"]) == 1
    catch_up(live)
    after = {e["source"]: e["status"] for e in json.loads(queue.read_bytes())["entries"]}
    assert after[freed["source"]] == "pending"
    assert all(after[pid] == "success" for pid in marks if pid in after)  # theirs stays
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    catch_up(live)

    fresh = copy_repo(FIXTURES / "sample", tmp_path / "fresh")
    for commit in ("01-batch", "03-batch"):
        apply_commit(fresh, FIXTURES / "replay" / commit)
    shutil.copyfile(queue, fresh / "data" / "queues" / "priority-queue.json")
    engine.up(Store(fresh))
    assert failure_files(live) == failure_files(fresh)
    assert queue_statuses(live) == queue_statuses(fresh)
    kinds = [json.loads(p.read_bytes().split(b"\n", 1)[0]) for p in run_files(live)]
    assert [(k["from"], k["to"]) for k in kinds][1:] == [("0003", "0003")] * 3


def test_a_new_failure_file_and_nothing_else_rewrites_only_it_and_the_queues(fixture_repo):
    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    run = catch_up(live)
    counts = {sr.step.id: (sr.files_read, sr.changed_files) for sr in run.steps}
    assert counts["0001"] == (2, 2) and counts["0002"][0] == 2
    assert counts["0003"][0] == 2  # both queues derived again


def test_a_corrupt_or_missing_cache_is_rebuilt_never_trusted(fixture_repo, tmp_path):
    live = fixture_repo("sample")
    engine.up(Store(live))
    parts = Store(live).cache_dir() / cache.NAME
    reference = copy_repo(FIXTURES / "sample", tmp_path / "reference")
    engine.up(Store(reference))
    # entries that lie (a blocker renamed) but stay valid JSON: the sum no longer holds
    lie = parts.read_bytes().replace(b'"ada-url"', b'"zzz-lie"')
    assert lie != parts.read_bytes()
    parts.write_bytes(lie)
    for root in (live, reference):
        apply_commit(root, FIXTURES / "replay" / "01-batch")
        catch_up(root)
    assert queue_statuses(live) == queue_statuses(reference)
    from migrate.explain import explain

    q = explain(Store(live), "homebrew:node")["queues"][0]
    assert "zzz-lie" not in json.dumps(q) and "ada-url" in json.dumps(q)
    parts.unlink()
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    apply_commit(reference, FIXTURES / "replay" / "03-batch")
    catch_up(live)
    catch_up(reference)
    assert queue_statuses(live) == queue_statuses(reference)


def test_the_cache_is_never_committed(fixture_repo):
    """What a run recomputes is no commit's business: git ignores the cache (and what a
    run leaves only while it runs) through the .gitignore migrate keeps in its folder."""
    import subprocess

    live = fixture_repo("sample")
    engine.up(Store(live))
    assert (live / "data" / ".migrate" / "cache" / cache.NAME).is_file()  # (no git here)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=live, check=True)
    subprocess.run([*git, "add", "data"], cwd=live, check=True)
    listed = subprocess.run(
        [*git, "ls-files", "data/.migrate"], cwd=live, capture_output=True, text=True
    ).stdout.split()
    assert listed and all(
        p.startswith("data/.migrate/runs/") or p.endswith(".gitignore") for p in listed
    )
    apply_commit(live, FIXTURES / "replay" / "03-batch")  # (in a clone: in .git/)
    engine.up(Store(live))
    assert (live / ".git" / "migrate").is_dir()
    assert (Store(live).cache_dir() / cache.NAME).is_file()


def test_a_catch_up_reads_the_batch_not_the_history(fixture_repo, monkeypatch):
    """Every failure file is read (its version, its checksum), but only the batch's are
    parsed: what the steps need from the others comes from the cache."""
    from migrate.engine import survey

    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    parsed: list[str] = []
    original = survey.file_rows

    def counting(rel, data, *args, **kwargs):
        parsed.append(rel)
        return original(rel, data, *args, **kwargs)

    monkeypatch.setattr(survey, "file_rows", counting)
    engine.up(Store(live), jobs=1)
    assert sorted(set(parsed)) == [
        "data/failures/github-2026-03-03T05-49-35Z.jsonl",
        "data/failures/homebrew-2026-03-03T05-49-35Z.jsonl",
    ]


def test_a_failure_file_another_writer_deleted_is_caught_up_once(fixture_repo):
    """Status derived again without it: the repo is at head after that one run, a second
    `up` plans nothing, and a rollback leaves it deleted."""
    live = fixture_repo("sample")
    engine.up(Store(live))
    victim = live / "data" / "failures" / "homebrew-2026-02-07T03-03-36Z.jsonl"  # (node's)
    victim.unlink()
    rel = victim.relative_to(live).as_posix()
    assert (rel, "deleted by another writer since migrate wrote it") in engine.verify(Store(live))[
        1
    ]
    engine.up(Store(live))
    assert engine.status(Store(live))["behind"]["files"] == 0
    assert engine.up(Store(live)).plan.steps == ()
    assert main(["status", "--repo", str(live), "--check"]) == 0
    plan = engine.down(Store(live), "base", dry_run=True)
    assert (rel, "deleted by another writer: left deleted", {}) in plan.rule_files
    engine.down(Store(live), "base")
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
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "01-batch")
    import importlib

    compute = importlib.import_module("migrate.engine.compute")
    original = compute.survey

    def survey_then_a_batch_lands(*args, **kwargs):
        found = original(*args, **kwargs)
        apply_commit(live, FIXTURES / "replay" / "03-batch")
        return found

    monkeypatch.setattr(compute, "survey", survey_then_a_batch_lands)
    run = engine.up(Store(live))
    monkeypatch.setattr(compute, "survey", original)
    assert run.theirs == []  # (nothing the run read was rewritten)
    batch = sorted((FIXTURES / "replay" / "03-batch" / "data" / "failures").iterdir())
    for p in batch:  # (as the orchestrator wrote them: v1)
        assert (live / "data" / "failures" / p.name).read_bytes() == p.read_bytes()
    behind = engine.status(Store(live))["behind"]
    assert behind["failures"] == len(batch)  # (and the queues, to derive again with them)
    engine.up(Store(live))
    for commit in ("01-batch", "03-batch"):
        apply_commit(reference, FIXTURES / "replay" / commit)
    engine.up(Store(reference))
    assert failure_files(live) == failure_files(reference)
    assert queue_statuses(live) == queue_statuses(reference)
    assert check_repo(Store(live), at_head=True).ok


def test_status_says_what_is_behind_in_numbers_that_add_up(fixture_repo, capsys):
    """After a batch: the new files, plus the queues whose statuses they change; `-v`
    lists each file with why."""
    live = fixture_repo("sample")
    engine.up(Store(live))
    apply_commit(live, FIXTURES / "replay" / "03-batch")
    b = engine.status(Store(live))["behind"]
    assert b["failures"] == 2 and b["files"] == b["failures"] + b["queues"]
    assert main(["status", "--repo", str(live), "-v"]) == 0
    out = capsys.readouterr().out
    assert f"behind:  {b['files']} file(s) (2 failure file(s) other writers added" in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  data/")]
    assert sorted(listed) == sorted(x["path"] for x in [*b["list"], *b["others"]])
    assert "(new: added by another writer)" in out
