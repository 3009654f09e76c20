"""Crash windows, broken inputs at later versions, and other cases a real repo meets."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import BadInputError, LedgerError
from migrate.ingest import ingest
from migrate.report import build_report  # noqa: F401 - pandas imported before any clock
from migrate.store import Store
from migrate.store.ledger import Ledger
from tests.helpers import data_only, refused_up, reseal, run_files, snapshot

pytestmark = pytest.mark.usefixtures("frozen_clock")
# (pandas imported while freezegun has the clock frozen crashes the interpreter: `report`,
# run by a test below, would import it then)


def test_a_run_killed_while_writing_its_ledger_run_is_recovered(fixture_repo, monkeypatch):
    """Killed after staging every file, before its ledger run exists: nothing was replaced;
    the next run removes the staged copies and does the whole run."""
    clean = fixture_repo("sample")
    original = snapshot(clean)
    engine.up(Store(clean))
    expected = data_only(snapshot(clean))
    engine.down(Store(clean), "base")

    def killed(self, run, entries):
        raise SystemExit("killed while writing the run's ledger file")

    monkeypatch.setattr(Ledger, "write_pending", killed)
    with pytest.raises(SystemExit):
        engine.up(Store(clean))
    monkeypatch.undo()
    assert data_only(snapshot(clean)) == data_only(original)  # nothing replaced yet
    engine.up(Store(clean))
    assert data_only(snapshot(clean)) == expected
    engine.down(Store(clean), "base")
    assert snapshot(clean) == original


def test_a_damaged_ledger_run_is_a_ledger_error_not_a_silent_loss(fixture_repo):
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    (run,) = run_files(root)
    run.write_bytes(run.read_bytes()[:-40])  # cut short
    with pytest.raises(LedgerError, match="unreadable"):
        engine.down(Store(root), "base")
    with pytest.raises(LedgerError):
        engine.verify(Store(root))


@pytest.mark.parametrize("damage", ["whole-lines-cut", "steps-edited", "crlf-checkout"])
def test_a_run_file_missing_lines_or_edited_is_refused_by_every_command(fixture_repo, damage):
    """Lines cut whole (each left is valid JSON) or a record edited by hand: read as they
    are, `down` would leave migrate's values in the files the run file no longer names.
    Every command refuses (exit 4) and nothing is written. A checkout that turned the lines
    to CRLF is the same ledger."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    (run,) = run_files(root)
    head, *lines = run.read_bytes().splitlines(keepends=True)
    if damage == "whole-lines-cut":
        lines = lines[:-2]  # (the queues' entries)
    elif damage == "steps-edited":
        entry = json.loads(lines[0])
        entry["steps"] = ["0002"] if entry["steps"] != ["0002"] else ["0001"]  # (by hand)
        lines[0] = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    else:
        lines = [x.replace(b"\n", b"\r\n") for x in lines]
    run.write_bytes(head + b"".join(lines))
    before = snapshot(root)
    if damage == "crlf-checkout":
        assert engine.verify(Store(root))[0] == []
        assert main(["down", "--repo", str(root), "--to", "base", "-q"]) == 0
        return
    for args in (["down", "--to", "base"], ["status"], ["check"], ["verify"], ["up"]):
        assert main([*args, "--repo", str(root), "-q"]) == 4, args
    assert snapshot(root) == before


@pytest.mark.parametrize(
    "extra",
    [b"<<<<<<< HEAD\n", b'{"schema_version":2,\n'],
    ids=["merge-conflict", "truncated-v2"],
)
def test_non_v2_lines_at_a_later_version_are_named_not_a_traceback(fixture_repo, extra):
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    f = root / "data" / "failures" / "batch-2026-03-08T02-37-10Z.jsonl"
    f.write_bytes(extra)
    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(Store(root))
    assert exc.value.problems[0].startswith("data/failures/batch-2026-03-08T02-37-10Z.jsonl:1:")
    assert snapshot(root) == before


def test_a_v1_line_another_writer_adds_after_a_step_is_caught_up(fixture_repo):
    """The batch workflow's jq step keeps writing v1 per-recipe lines after the backfill:
    the next `up` gives them the steps their content lacks, below the repo's version."""
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    f = root / "data" / "failures" / "batch-2026-03-08T02-37-10Z.jsonl"
    v1 = (
        b'{"schema_version":1,"recipe":"procs","platform":"linux-alpine-musl-x86_64",'
        b'"exit_code":6,"category":"deterministic","timestamp":"2026-03-08T02:37:10Z"}\n'
    )
    f.write_bytes(v1)
    engine.up(Store(root))
    line = json.loads(f.read_bytes())
    assert line["schema_version"] == 2 and "blocked_by" in line
    assert check_repo(Store(root)).ok
    engine.down(Store(root), "base")
    assert f.read_bytes() == v1  # the other writer's bytes, as they wrote them


@pytest.mark.parametrize(
    "bad", [{"entries": 5}, {"entries": [{"name": ["x"]}]}, {"packages": None}]
)
def test_structurally_bad_queues_are_reported_and_refused(fixture_repo, bad):
    root = fixture_repo("sample")
    q = root / "data" / "queues" / "priority-queue.json"
    doc = {"schema_version": 1, "updated_at": "2026-03-03T03:21:03Z", **bad}
    q.write_text(json.dumps(doc, indent=2) + "\n")
    report = check_repo(Store(root))
    assert not report.ok and all(
        p.file == "data/queues/priority-queue.json" for p in report.problems
    )
    refused_up(root)


def test_a_broken_queue_refuses_the_run_instead_of_losing_ecosystems(fixture_repo):
    root = fixture_repo("sample")
    for q in (root / "data" / "queues").glob("priority-queue*.json"):
        q.write_bytes(q.read_bytes() + b"x")
    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(Store(root))
    at = (root / "data" / "queues" / "priority-queue.json").read_bytes().count(b"\n") + 1
    assert f"data/queues/priority-queue.json:{at}: invalid JSON: Extra data" in "\n".join(
        exc.value.problems
    )  # (the line of the "x": where it breaks)
    assert snapshot(root) == before


def _env(pid, msg, ts, stamp):
    return codec.dumps_line(
        {
            "schema_version": 1,
            "ecosystem": "homebrew",
            "environment": "linux-glibc-x86_64",
            "updated_at": stamp,
            "failures": [
                {
                    "package_id": pid,
                    "category": "validation_failed",
                    "message": msg,
                    "timestamp": ts,
                }
            ],
        }
    )


def test_sibling_is_the_nearest_earlier_record_even_when_it_names_nobody(tmp_path):
    f = tmp_path / "data" / "failures"
    f.mkdir(parents=True)
    (f / "homebrew-2026-01-31T00-00-00Z.jsonl").write_text(
        _env(
            "homebrew:foo",
            "recipe bar not found in registry",
            "2026-01-31T00:00:00Z",
            "2026-01-31T00-00-00Z",
        )
        + "\n"
    )
    (f / "homebrew-2026-02-05T00-00-00Z.jsonl").write_text(
        _env(
            "homebrew:foo", "Error: API rate limit", "2026-02-05T00:00:00Z", "2026-02-05T00-00-00Z"
        )
        + "\n"
    )
    (f / "homebrew-2026-03-06T00-00-00Z.jsonl").write_text(
        codec.dumps_line(
            {
                "schema_version": 1,
                "recipe": "foo",
                "platform": "linux-alpine-musl-x86_64",
                "exit_code": 8,
                "category": "deterministic",
                "timestamp": "2026-03-06T00:00:00Z",
            }
        )
        + "\n"
    )
    engine.up(Store(tmp_path))
    line = (f / "homebrew-2026-03-06T00-00-00Z.jsonl").read_text()
    rec = json.loads(line)
    assert rec["blocked_by"] is None and "evidence" not in rec


def test_ingest_skips_entries_that_cannot_be_records(fixture_repo, tmp_path, capsys):
    root = fixture_repo("sample")
    engine.up(Store(root))
    v = tmp_path / "validation-results-x.json"
    v.write_text(
        json.dumps(
            [
                {
                    "recipe": "foo",
                    "platform": "linux-alpine-musl-x86_64",
                    "status": "fail",
                    "attempts": 1,
                    "blocked_by": [],
                },
                {
                    "recipe": "bar",
                    "platform": "Alpine Linux",
                    "status": "fail",
                    "exit_code": 6,
                    "attempts": 1,
                    "blocked_by": [],
                },
                {
                    "recipe": "anyquery",
                    "platform": "linux-alpine-musl-x86_64",
                    "status": "fail",
                    "exit_code": 6,
                    "attempts": 1,
                    "blocked_by": [],
                },
            ]
        )
    )
    rel, n, problems = ingest(Store(root), [str(v)])
    assert n == 1 and len(problems) == 2
    assert "foo: skipped" in problems[0] and "exit_code" in problems[0]
    assert "bar: skipped" in problems[1] and "platform" in problems[1]
    assert check_repo(Store(root)).ok


def test_checking_marker_inside_a_section_does_not_steal_its_names(tmp_path):
    from migrate.evidence.artifacts import scan_dirs

    (tmp_path / "run.log").write_text(
        "Creating recipe for kew from npm:kew...\nInstalling eval-time dependencies: [nodejs]\n"
        "Checking runtime dependencies for nodejs...\n"
        "Error: registry: recipe gcc-libs not found in registry\n"
    )
    (f,) = scan_dirs([str(tmp_path)]).findings
    assert (f.recipe, f.package_id, f.names) == ("kew", "npm:kew", ["gcc-libs"])
    assert f.file == f"{tmp_path.name}/run.log"  # provenance: no absolute path


def test_symlinked_failure_files_are_refused(fixture_repo):
    root = fixture_repo("sample")
    os.symlink("homebrew-2026-02-07T03-03-36Z.jsonl", root / "data" / "failures" / "zz-link.jsonl")
    assert any("is a symlink" in str(p) for p in check_repo(Store(root)).problems)
    with pytest.raises(BadInputError, match="nothing was written"):
        engine.up(Store(root))


def test_down_leaves_a_file_another_writer_deleted_deleted(fixture_repo, capsys):
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    victim = root / "data" / "failures" / "npm-2026-02-19T14-15-55Z.jsonl"
    victim.unlink()
    run = engine.down(Store(root), "base")
    rel = "data/failures/npm-2026-02-19T14-15-55Z.jsonl"
    assert (rel, "deleted by another writer: left deleted", {}) in run.rule_files
    assert not victim.exists() and check_repo(Store(root)).ok


def test_a_dry_run_writes_nothing_at_all(fixture_repo):
    root = fixture_repo("sample")
    stray = root / "data" / "failures" / ".homebrew.jsonl.migrate-tmp"
    stray.write_bytes(b"half")
    before = snapshot(root)
    assert main(["up", "--repo", str(root), "--dry-run"]) == 0
    assert snapshot(root) == before and stray.exists()


@pytest.mark.parametrize(
    "path", ["../outside.txt", "/tmp/x", ".git/hooks/post-checkout", "data/failures/../../x.jsonl"]
)
def test_a_ledger_cannot_point_down_at_files_migrate_does_not_own(fixture_repo, path):
    root = fixture_repo("sample")
    engine.up(Store(root))
    (run,) = run_files(root)
    evil = {"path": path, "origin": "0", "steps": [{"id": "0003", "restore": {"text": "x"}}]}
    run.write_text(run.read_text() + json.dumps(evil) + "\n")
    with pytest.raises(LedgerError, match="not those its header seals"):
        engine.down(Store(root), "0002")
    reseal(run)  # (an edit that also fixes the seal: still refused)
    with pytest.raises(LedgerError, match="not a file migrate writes"):
        engine.down(Store(root), "0002")


@pytest.mark.parametrize("edit", ["drop-middle", "reverse", "duplicate", "wrong-target"])
def test_a_hand_edited_run_is_a_ledger_error(fixture_repo, edit):
    root = fixture_repo("sample")
    engine.up(Store(root))
    (path,) = run_files(root)
    head, rest = path.read_text().split("\n", 1)
    doc = json.loads(head)
    steps = doc["steps"]
    if edit == "wrong-target":
        doc["to"] = "0002"
    else:
        doc["steps"] = {
            "drop-middle": [steps[0], steps[2]],
            "reverse": steps[::-1],
            "duplicate": steps + [steps[-1]],
        }[edit]
    path.write_text(json.dumps(doc) + "\n" + rest)
    for call in (
        lambda: engine.down(Store(root), "base"),
        lambda: engine.status(Store(root)),
    ):
        with pytest.raises(LedgerError, match="edited by hand"):
            call()


def test_check_at_v1_refuses_what_up_would_refuse(tmp_path):
    f = tmp_path / "data" / "failures"
    f.mkdir(parents=True)
    line = _env("homebrew:foo", "x", "2026-01-31T00:00:00Z", "2026-01-31T00-00-00Z")
    line = line.replace(
        '"category":"validation_failed"',
        '"category":"missing_dep","blocked_by":["\\u003cimg\\u003e"]',
    )
    b = (
        '{"schema_version":1,"recipe":"x","platform":"p","exit_code":6,'
        '"category":"deterministic","timestamp":"2026-02-08T02:37:10Z"}'
    )
    (f / "homebrew.jsonl").write_text(line + "\n" + b + "\n")
    fields = sorted(p.field for p in check_repo(Store(tmp_path)).problems)
    assert fields == ["failures[0].blocked_by[0]", "platform"]
    with pytest.raises(BadInputError):
        engine.up(Store(tmp_path))


def test_a_dry_run_lists_every_status_change_with_its_reason(fixture_repo, capsys):
    root = fixture_repo("sample")
    assert main(["up", "--repo", str(root), "--dry-run", "-v"]) == 0
    out = capsys.readouterr().out
    changes = [x for x in out.splitlines() if x.startswith("  data/") and " -> blocked: " in x]
    assert changes and all("names blockers" in x and "unresolved" in x for x in changes)
    assert "homebrew:neovim failed -> blocked: missing_dep record" in out


def test_report_top_must_be_positive(fixture_repo, capsys):
    root = fixture_repo("sample")
    engine.up(Store(root))
    with pytest.raises(SystemExit) as exc:
        main(["report", "--top", "0", "--repo", str(root)])
    assert exc.value.code == 2 and "must be 1 or more" in capsys.readouterr().err


def test_recipes_must_be_a_folder(fixture_repo, capsys):
    root = fixture_repo("sample")
    before = snapshot(root)
    assert main(["up", "--recipes", "/nonexistent", "--repo", str(root)]) == 2
    assert "/nonexistent: not a directory (--recipes takes a folder)" in capsys.readouterr().err
    assert snapshot(root) == before


def test_a_run_of_a_newer_migrate_is_named_by_every_command_that_reads_the_data(fixture_repo):
    """A newer migrate ran step 0004 on this repo: `check` (CI's gate) crashed with a
    traceback and exit 1, `verify`, `report` and `explain` read the data as if at 0003.
    Each now names the run and the version to install (exit 4); `history` lists it."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    (run,) = run_files(root)
    head = json.loads(run.read_bytes().split(b"\n", 1)[0])
    head.update(run="000002-2026-12-07T10-00-00Z-abcdef", tool_version="9.0.0", steps=["0004"])
    head.update({"from": "0003", "to": "0004", "counts": {}, "entries": 0})
    head["sum"] = hashlib.sha256(b"").hexdigest()
    newer = run.with_name(head["run"] + ".jsonl")
    newer.write_text(json.dumps(head) + "\n")
    for args in (["check"], ["verify"], ["report"], ["explain", "homebrew:node"], ["status"]):
        assert main([*args, "--repo", str(root), "-q"]) == 4, args
    assert main(["history", "--repo", str(root), "-q"]) == 0


def test_a_run_of_a_sealing_migrate_without_its_seal_is_refused(fixture_repo):
    """Taking the seal off (and lines out) must not pass for a run of an older migrate."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    (run,) = run_files(root)
    head, _, body = run.read_bytes().partition(b"\n")
    doc = json.loads(head)
    del doc["entries"], doc["sum"]
    run.write_bytes(json.dumps(doc).encode() + b"\n" + body)
    head, *lines = run.read_bytes().splitlines(keepends=True)
    run.write_bytes(head + b"".join(lines[:-1]))
    assert main(["status", "--repo", str(root), "-q"]) == 4


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("status", "weird", "status"),
        ("confidence", "high", "'auto' or 'curated'"),
        ("priority", 4, "less than or equal to 3"),
        ("source", "", "at least 1 character"),
    ],
)
def test_an_entry_tsukus_dashboard_would_refuse_is_named_at_its_line(
    fixture_repo, capsys, field, value, reason
):
    """One entry tsuku's dashboard refuses aborts the whole dashboard (formats.md §7):
    named at the entry's line by `check` (exit 1) and `up` (exit 2), nothing written."""
    root = fixture_repo("sample")
    q = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["entries"][2][field] = value
    q.write_text(json.dumps(doc, indent=2) + "\n")
    before = snapshot(root)
    opens = [n for n, x in enumerate(q.read_text().split("\n"), 1) if x == "    {"]
    assert main(["check", "--repo", str(root), "-q"]) == 1
    out = capsys.readouterr().out
    assert f"data/queues/priority-queue.json:{opens[2]}: entries[2].{field}:" in out
    assert reason in out
    assert main(["up", "--repo", str(root), "-q"]) == 2
    assert f"entries[2].{field}" in capsys.readouterr().err
    assert snapshot(root) == before


def test_a_folder_with_a_data_folder_is_not_a_tsuku_repo(tmp_path, capsys):
    (tmp_path / "data" / "metrics").mkdir(parents=True)
    assert main(["up", "--repo", str(tmp_path)]) == 2
    assert "not a tsuku data repo (no data/failures/ or data/queues/ folder)" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "data" / ".migrate").exists()
