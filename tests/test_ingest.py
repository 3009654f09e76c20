"""`migrate ingest`: CI artifacts become v2 lines carrying blocked_by."""

from __future__ import annotations

import json

import pytest
from freezegun import freeze_time

from migrate import engine
from migrate.check import check_repo
from migrate.cli import main
from migrate.errors import UsageError
from migrate.ingest import ingest
from migrate.store import Store
from tests.conftest import FIXTURES
from tests.helpers import snapshot

CI = FIXTURES / "evidence" / "ci" / "2026-02-21T07-27-58Z"
INSTALL = FIXTURES / "evidence" / "install"


@freeze_time("2026-04-01 12:00:00")
def test_ingest_writes_one_v2_line_per_failure_with_blockers(fixture_repo):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo)
    files = sorted(str(p) for p in CI.glob("*.json")) + [str(INSTALL / "gitui.json")]
    rel, n, problems = ingest(repo, files)
    assert rel == "data/failures/batch-2026-04-01T12-00-00Z.jsonl" and problems == []
    recs = [json.loads(x) for x in (root / rel).read_text().splitlines()]
    assert n == len(recs) == 4  # 4 fail entries; pass and skipped entries are not failures
    by = {(r["recipe"], r["platform"]): r for r in recs}
    apr = by[("apr-util", "linux-alpine-musl-x86_64")]
    assert apr["blocked_by"] == ["apr"] and apr["category"] == "missing_dep"
    assert apr["ecosystem"] == "homebrew" and apr["timestamp"] == "2026-04-01T12:00:00Z"
    assert list(apr) == [  # the CI writer's per-recipe line, at v2
        "schema_version",
        "recipe",
        "ecosystem",
        "platform",
        "exit_code",
        "category",
        "blocked_by",
        "timestamp",
        "evidence",
    ]
    assert by[("apr-util", "linux-alpine-musl-arm64")]["blocked_by"] is None  # exit 8, unnamed
    any6 = by[("anycable-go", "linux-alpine-musl-x86_64")]
    assert any6["blocked_by"] == [] and any6["category"] == "install_failed"
    assert any6["ecosystem"] is None  # not in the queue: never assumed
    assert check_repo(repo).ok


def test_ingest_merges_install_json_for_the_same_recipe(fixture_repo, tmp_path):
    root = fixture_repo("sample")
    engine.up(Store(root), "0001")
    vr = tmp_path / "validation-results-linux-alpine-musl-x86_64.json"
    vr.write_text(
        json.dumps(
            [
                {
                    "recipe": "gitui",
                    "platform": "linux-alpine-musl-x86_64",
                    "status": "fail",
                    "exit_code": 8,
                    "attempts": 1,
                    "blocked_by": ["openssl@3"],
                }
            ]
        )
    )
    _, _, _ = ingest(Store(root), [str(vr), str(INSTALL / "gitui.json")])
    (f,) = [p for p in (root / "data" / "failures").glob("batch-2026-1*.jsonl")]
    (rec,) = [json.loads(x) for x in f.read_text().splitlines()]
    assert rec["blocked_by"] == ["openssl@3", "zlib-ng"]
    assert [e["source"] for e in rec["evidence"]] == ["validation_results", "install_json"]


def test_ingest_refuses_a_v1_repo_and_down_leaves_ingested_files_as_written(fixture_repo, capsys):
    root = fixture_repo("sample")
    with pytest.raises(UsageError, match="at base"):
        ingest(Store(root), [str(CI / "validation-results-linux-alpine-musl-x86_64.json")])
    engine.up(Store(root))
    assert main(["ingest", "--repo", str(root), *map(str, CI.glob("*.json"))]) == 0
    (new,) = {p for p in (root / "data" / "failures").iterdir()} - {
        root / "data" / "failures" / p.name for p in (FIXTURES / "sample/data/failures").iterdir()
    }
    ingested = new.read_bytes()
    engine.down(Store(root), "base")
    assert new.read_bytes() == ingested  # the CI's records, with their evidence: kept
    report = check_repo(Store(root))
    assert report.ok and report.ahead == len(ingested.splitlines())  # v2, read as v2


def test_ingest_stdout_writes_nothing(fixture_repo, capsys):
    root = fixture_repo("sample")
    before = snapshot(root)
    assert (
        main(
            [
                "ingest",
                "--repo",
                str(root),
                "--stdout",
                str(CI / "validation-results-linux-alpine-musl-x86_64.json"),
            ]
        )
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert snapshot(root) == before


def test_files_that_need_no_step_are_known_after_the_next_run(fixture_repo, tmp_path):
    """A `migrate ingest` file and a hand edit of a v2 line need no step: `up` derived the
    queue again with them but never recorded them, so `verify` named them (exit 1) after
    any number of runs, though `up` and `status` said the repo was at head. The ingested
    records name their artifact by file name, not by this machine's path."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    artifact = tmp_path / "validation-results-linux-alpine-musl-x86_64.json"
    artifact.write_bytes((CI / artifact.name).read_bytes())
    assert main(["ingest", "--repo", str(root), "-q", str(artifact)]) == 0
    (new,) = {p for p in (root / "data" / "failures").iterdir()} - {
        root / "data" / "failures" / p.name for p in (FIXTURES / "sample/data/failures").iterdir()
    }
    ingested = new.read_bytes()
    assert str(tmp_path) not in ingested.decode() and f'"{artifact.name}"' in ingested.decode()
    edited = sorted((root / "data" / "failures").glob("homebrew-*.jsonl"))[0]
    hand = edited.read_bytes().replace(b'"schema_version":2', b'"schema_version": 2')
    assert hand != edited.read_bytes()
    edited.write_bytes(hand)
    assert main(["verify", "--repo", str(root), "-q"]) == 1  # theirs, since the last run
    assert main(["up", "--repo", str(root), "-q"]) == 0
    assert main(["verify", "--repo", str(root), "-q"]) == 0
    assert main(["up", "--repo", str(root), "-q"]) == 0
    assert engine.up(Store(root)).plan.steps == ()
    engine.down(Store(root), "base")
    assert new.read_bytes() == ingested  # the CI's records: left as written
    assert not (root / "data" / ".migrate").exists()


def test_a_migrated_file_saved_again_at_v1_by_its_writer_is_caught_up(fixture_repo):
    """A file migrate wrote, saved again by its writer at v1: its content says what it
    lacks, so `status` counts it behind and the next `up` gives it its steps again."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    f = sorted((root / "data" / "failures").glob("homebrew-*.jsonl"))[0]
    f.write_bytes((FIXTURES / "sample" / "data" / "failures" / f.name).read_bytes())
    rel = f"data/failures/{f.name}"
    b = engine.status(Store(root))["behind"]
    assert {"path": rel, "why": "rewritten at v1 by another writer since migrate wrote it"} in b[
        "list"
    ]
    assert not check_repo(Store(root), at_head=True).ok
    run = engine.up(Store(root))
    assert rel in run.plan.files
    assert check_repo(Store(root), at_head=True).ok


def test_down_below_a_file_written_at_head_gives_it_the_steps_again(fixture_repo):
    """An ingested file recorded by a catch-up (no step, at 0002): `down --to 0001` leaves
    it as written and records it at 0001, so that the next `up` (with new evidence, say)
    runs step 0002 on it, as on every file below it."""
    root = fixture_repo("sample")
    engine.up(Store(root))
    assert (
        main(
            [
                "ingest",
                "--repo",
                str(root),
                "-q",
                str(CI / "validation-results-linux-alpine-musl-x86_64.json"),
            ]
        )
        == 0
    )
    engine.up(Store(root))
    files = len([f for f in (root / "data" / "failures").iterdir() if f.stat().st_size])
    engine.down(Store(root), "0001")
    run = engine.up(Store(root))
    assert {sr.step.id: sr.files_read for sr in run.steps}["0002"] == files
