"""Step 0001 records-v2, converting upwards and downwards, on real-shaped lines."""

from __future__ import annotations

import json

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.repo import DataRepo
from migrate.steps.s0001_records_v2 import RecordsV2
from tests.helpers import snapshot

NODE_A = (
    '{"schema_version":1,"ecosystem":"homebrew","environment":"linux-glibc-x86_64",'
    '"updated_at":"2026-02-07T03-03-36Z","failures":[{"package_id":"homebrew:node",'
    '"category":"missing_dep","blocked_by":["ada-url"],"message":"Error: registry: recipe '
    'ada-url not found in registry\\n  tsuku create ada-url --from \\u003cecosystem\\u003e",'
    '"timestamp":"2026-02-07T03:03:36.69166035Z"},{"package_id":"homebrew:uv","category":'
    '"validation_failed","message":"","timestamp":"2026-02-07T03:03:40Z"}]}'
)
PROCS_B = (
    '{"schema_version":1,"recipe":"procs","platform":"linux-alpine-musl-x86_64",'
    '"exit_code":6,"category":"deterministic","timestamp":"2026-02-08T02:37:10Z"}'
)
QUEUE = {
    "schema_version": 1,
    "updated_at": "2026-03-03T03:21:03Z",
    "entries": [
        {
            "name": n,
            "source": s,
            "priority": 1,
            "status": "pending",
            "confidence": "auto",
            "disambiguated_at": None,
            "failure_count": 0,
            "next_retry_at": None,
        }
        for n, s in [
            ("procs", "homebrew:procs"),
            ("bat", "github:sharkdp/bat"),
            ("jq", "homebrew:jq"),
            ("jq", "github:jqlang/jq"),
        ]
    ],
}


def make_repo(tmp_path, files: dict[str, bytes], queue=QUEUE):
    (tmp_path / "data" / "failures").mkdir(parents=True)
    (tmp_path / "data" / "queues").mkdir()
    for name, data in files.items():
        (tmp_path / "data" / "failures" / name).write_bytes(data)
    if queue is not None:
        (tmp_path / "data" / "queues" / "priority-queue.json").write_text(codec.dumps_queue(queue))
    return DataRepo(tmp_path)


def up_lines(repo, rel):
    step = RecordsV2()
    res = step.up(rel, repo.read_bytes(rel), step.prepare(repo, {}))
    assert not res.problems
    return [json.loads(x) for x in res.data.decode().splitlines()], res


def test_converts_upwards_an_envelope_into_one_line_per_record(tmp_path):
    repo = make_repo(tmp_path, {"homebrew-2026-02-07T03-03-36Z.jsonl": (NODE_A + "\n").encode()})
    recs, _ = up_lines(repo, "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl")
    node, uv = recs
    assert node["package_id"] == "homebrew:node" and node["name"] == "node"
    assert node["scope"] == "package" and node["platform"] == "linux-glibc-x86_64"
    assert node["category"] == "missing_dep" and node["category_legacy"] is None
    assert node["blocked_by"] == ["ada-url"]
    assert node["evidence"][0]["source"] == "record"
    assert node["timestamp"] == "2026-02-07T03:03:36.69166035Z"
    assert node["run"] == "2026-02-07T03-03-36Z"
    assert uv["category"] == "install_failed" and uv["category_legacy"] == "validation_failed"
    assert uv["blocked_by"] is None and uv["message"] == "" and uv["evidence"] == []


def test_converts_downwards_to_the_exact_envelope(tmp_path):
    raw = (NODE_A + "\n" + PROCS_B + "\n\n" + PROCS_B + "\n").encode()
    repo = make_repo(tmp_path, {"homebrew.jsonl": raw})
    step = RecordsV2()
    res = step.up("data/failures/homebrew.jsonl", raw, step.prepare(repo, {}))
    assert res.patch == {
        "layout": [
            {
                "A": {
                    "ecosystem": "homebrew",
                    "environment": "linux-glibc-x86_64",
                    "updated_at": "2026-02-07T03-03-36Z",
                },
                "n": 2,
            },
            {"B": 1},
            {"blank": ""},
            {"B": 1},
        ]
    }
    assert step.down("data/failures/homebrew.jsonl", res.data, res.patch) == raw


@pytest.mark.parametrize(
    "fname, recipe, expected",
    [
        ("homebrew-2026-02-08T02-37-10Z.jsonl", "procs", "homebrew:procs"),
        ("homebrew.jsonl", "anything", "homebrew:anything"),
        ("batch-2026-02-18T15-51-38Z.jsonl", "bat", "github:sharkdp/bat"),  # from the queue
        ("batch-2026-02-18T15-51-38Z.jsonl", "jq", None),  # ambiguous in the queue
        ("batch-2026-02-18T15-51-38Z.jsonl", "unknown-recipe", None),  # not in the queue
    ],
)
def test_platform_line_ecosystem_is_never_assumed(tmp_path, fname, recipe, expected):
    line = PROCS_B.replace('"procs"', json.dumps(recipe))
    repo = make_repo(tmp_path, {fname: (line + "\n").encode()})
    (rec,), _ = up_lines(repo, f"data/failures/{fname}")
    assert rec["package_id"] == expected
    assert rec["ecosystem"] == (expected.split(":")[0] if expected else None)
    assert rec["scope"] == "platform" and rec["exit_code"] == 6 and rec["message"] is None
    assert rec["run"] == (
        "2026-02-08T02-37-10Z" if fname == "homebrew.jsonl" else fname.split("-", 1)[1][:-6]
    )


@pytest.mark.parametrize(
    "raw",
    [
        (NODE_A + "\n" + PROCS_B).encode(),  # no final newline
        (NODE_A + "\r\n" + PROCS_B + "\r\n").encode(),  # CRLF
        (PROCS_B.replace(",", ", ") + "\n").encode(),  # not Go's spacing
        (NODE_A.replace("\\u003c", "<").replace("\\u003e", ">") + "\n").encode(),  # jq escaping
        (NODE_A.replace('"blocked_by":["ada-url"],', '"blocked_by":[],') + "\n").encode(),
        b"\n\n   \n" + (PROCS_B + "\n").encode(),  # blank lines
        b"",  # zero bytes
    ],
    ids=[
        "no-final-newline",
        "crlf",
        "spaces",
        "unescaped-html",
        "empty-blocked-by",
        "blank-lines",
        "empty-file",
    ],
)
def test_odd_but_valid_files_round_trip_byte_for_byte(tmp_path, raw):
    repo = make_repo(tmp_path, {"homebrew.jsonl": raw})
    before = snapshot(tmp_path)
    engine.up(repo)
    assert check_repo(repo).ok
    engine.down(repo, "base")
    assert snapshot(tmp_path) == before


def test_bad_lines_refuse_the_run_before_anything_is_written(tmp_path):
    raw = NODE_A + "\n{not json\n" + PROCS_B.replace('"exit_code":6', '"exit_code":"6"') + "\n"
    repo = make_repo(
        tmp_path, {"homebrew.jsonl": raw.encode(), "ok.jsonl": (PROCS_B + "\n").encode()}
    )
    before = snapshot(tmp_path)
    from migrate.errors import BadInputError

    with pytest.raises(BadInputError) as exc:
        engine.up(repo)
    assert exc.value.problems == [
        "data/failures/homebrew.jsonl:2: invalid JSON: Expecting property name enclosed in"
        " double quotes (column 2)",
        "data/failures/homebrew.jsonl:3: exit_code: Input should be a valid integer (got '6')",
    ]
    assert snapshot(tmp_path) == before


def test_unknown_category_is_refused_not_guessed(tmp_path):
    repo = make_repo(
        tmp_path, {"homebrew.jsonl": (PROCS_B.replace("deterministic", "weird") + "\n").encode()}
    )
    from migrate.errors import BadInputError

    with pytest.raises(BadInputError) as exc:
        engine.up(repo)
    (problem,) = exc.value.problems
    assert problem.startswith(
        "data/failures/homebrew.jsonl:1: category: Input should be 'recipe_not_found',"
    )
    assert problem.endswith("(got 'weird')")


def _ingested_v2_line(spaced: bool) -> str:
    rec = {
        "schema_version": 2,
        "package_id": "homebrew:jq",
        "ecosystem": "homebrew",
        "name": "jq",
        "scope": "package",
        "platform": "linux-glibc-x86_64",
        "category": "install_failed",
        "category_legacy": None,
        "reclassified_from": None,
        "exit_code": None,
        "blocked_by": None,
        "evidence": [],
        "message": "tsuku create jq --from <ecosystem>",
        "message_truncated": False,
        "timestamp": "2026-03-05T00:00:00Z",
        "run": None,
    }
    return json.dumps(rec) if spaced else codec.dumps_line(rec)


@pytest.mark.parametrize("spaced", [False, True], ids=["as-migrate-writes", "another-writer"])
def test_a_file_already_v2_at_base_comes_back_exactly(fixture_repo, spaced):
    """A file that is v2 before any step (ingested early, or written by hand) is written
    canonical by step 0001 and recorded, so `down` gives back exactly what was there."""
    root = fixture_repo("sample")
    f = root / "data" / "failures" / "homebrew-2026-03-05T00-00-00Z.jsonl"
    f.write_text(_ingested_v2_line(spaced) + "\n")
    before = snapshot(root)
    repo = DataRepo(root)
    engine.up(repo)
    line = f.read_bytes().rstrip(b"\n")
    assert line == codec.dumps_bytes(codec.loads(line))  # canonical, so later steps read it
    engine.down(repo, "base")
    assert snapshot(root) == before


def test_a_file_already_v2_and_changed_later_is_converted_down_not_refused(fixture_repo):
    root = fixture_repo("sample")
    f = root / "data" / "failures" / "homebrew-2026-03-05T00-00-00Z.jsonl"
    f.write_text(_ingested_v2_line(False) + "\n")
    repo = DataRepo(root)
    engine.up(repo)
    assert engine.verify(repo) == []
    f.write_text(f.read_text() + f.read_text())  # e.g. `migrate ingest` appended a record
    assert engine.verify(repo) == []  # step 0001 did not write it: nothing to report
    engine.down(repo, "base")
    assert all(json.loads(line)["schema_version"] == 1 for line in f.read_text().splitlines())
