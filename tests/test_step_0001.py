"""Step 0001 records-v2, converting upwards and downwards, on real-shaped lines."""

from __future__ import annotations

import json

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.steps.s0001_records_v2 import RecordsV2
from migrate.store import Store
from tests.helpers import snapshot, step_down, step_up

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
    return Store(tmp_path)


def up_lines(repo, rel):
    res = step_up(RecordsV2(), repo, rel)
    assert not res.problems
    return [json.loads(x) for x in res.data.decode().splitlines()], res


def test_converts_upwards_an_envelope_keeping_its_shape(tmp_path):
    """One envelope line stays one envelope line, its records in order; v2 changes values
    and adds keys only (formats.md section 7: tsuku's readers then read it unchanged)."""
    repo = make_repo(tmp_path, {"homebrew-2026-02-07T03-03-36Z.jsonl": (NODE_A + "\n").encode()})
    (env,), _ = up_lines(repo, "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl")
    v1 = json.loads(NODE_A)
    assert list(env) == list(v1) and env["schema_version"] == 2
    assert {k: env[k] for k in ("ecosystem", "environment", "updated_at")} == {
        k: v1[k] for k in ("ecosystem", "environment", "updated_at")
    }
    node, uv = env["failures"]
    assert list(node) == ["package_id", "category", "blocked_by", "message", "timestamp"]
    assert node == v1["failures"][0]  # canonical already, blockers stated: nothing to add
    assert list(uv) == [
        "package_id",
        "category",
        "category_legacy",
        "blocked_by",
        "message",
        "timestamp",
    ]
    assert uv["category"] == "install_failed" and uv["category_legacy"] == "validation_failed"
    assert uv["blocked_by"] is None  # unknown: never [] and never a guess


def test_converts_downwards_to_the_exact_lines(tmp_path):
    raw = (NODE_A + "\n" + PROCS_B + "\n\n" + PROCS_B + "\n").encode()
    repo = make_repo(tmp_path, {"homebrew.jsonl": raw})
    step = RecordsV2()
    res = step_up(step, repo, "data/failures/homebrew.jsonl", raw)
    assert res.data.count(b"\n") == raw.count(b"\n")  # every line in its place
    assert res.data.split(b"\n")[2] == b""  # the blank line stays blank
    assert res.patch is None  # every line comes back from its v2 form alone
    assert step_down(step, res.data, res.patch) == raw


@pytest.mark.parametrize(
    "fname, recipe, expected",
    [
        ("homebrew-2026-02-08T02-37-10Z.jsonl", "procs", "homebrew"),
        ("homebrew.jsonl", "anything", "homebrew"),
        ("batch-2026-02-18T15-51-38Z.jsonl", "bat", "github"),  # from the queue
        ("batch-2026-02-18T15-51-38Z.jsonl", "jq", None),  # ambiguous in the queue
        ("batch-2026-02-18T15-51-38Z.jsonl", "unknown-recipe", None),  # not in the queue
    ],
)
def test_recipe_line_ecosystem_is_proven_or_null_never_assumed(tmp_path, fname, recipe, expected):
    line = PROCS_B.replace('"procs"', json.dumps(recipe))
    repo = make_repo(tmp_path, {fname: (line + "\n").encode()})
    (rec,), _ = up_lines(repo, f"data/failures/{fname}")
    assert list(rec) == [
        "schema_version",
        "recipe",
        "ecosystem",
        "platform",
        "exit_code",
        "category",
        "category_legacy",
        "blocked_by",
        "timestamp",
    ]
    assert rec["ecosystem"] == expected and rec["recipe"] == recipe
    assert rec["category"] == "generation_failed" and rec["category_legacy"] == "deterministic"


def test_keys_tsuku_defines_and_unknown_keys_are_carried_through(tmp_path):
    """A newer upstream writer's fields (workflow_url, subcategory, message, its own
    ecosystem) and a key nobody knows are kept as they are, and come back exactly."""
    item = json.loads(NODE_A)
    item["failures"][1] |= {"subcategory": "timeout", "workflow_url": "https://x/1", "zz": 1}
    item["run_url"] = "https://x/run/1"
    recipe = json.loads(PROCS_B) | {"ecosystem": "homebrew", "message": "m", "future": [1]}
    raw = (codec.dumps_line(item) + "\n" + codec.dumps_line(recipe) + "\n").encode()
    repo = make_repo(tmp_path, {"homebrew-2026-02-07T03-03-36Z.jsonl": raw})
    before = snapshot(tmp_path)
    report = check_repo(repo)
    assert report.ok and sorted(p.field for p in report.notes) == [
        "failures[1].zz",
        "future",
        "run_url",
    ]
    engine.up(repo)
    env, line = (
        json.loads(x)
        for x in (tmp_path / "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl")
        .read_text()
        .splitlines()
    )
    assert env["run_url"] == "https://x/run/1"
    assert env["failures"][1]["zz"] == 1 and env["failures"][1]["subcategory"] == "timeout"
    assert line["future"] == [1] and line["ecosystem"] == "homebrew" and line["message"] == "m"
    assert check_repo(repo).ok
    engine.down(repo, "base")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "raw",
    [
        (NODE_A + "\n" + PROCS_B).encode(),  # no final newline
        (NODE_A + "\r\n" + PROCS_B + "\r\n").encode(),  # CRLF
        (PROCS_B.replace(",", ", ") + "\n").encode(),  # not Go's spacing
        (NODE_A.replace("\\u003c", "<").replace("\\u003e", ">") + "\n").encode(),  # jq escaping
        (NODE_A.replace('"blocked_by":["ada-url"],', '"blocked_by":[],') + "\n").encode(),
        (PROCS_B.replace('"timestamp"', '"blocked_by":null,"timestamp"') + "\n").encode(),
        b"\n\n   \n" + (PROCS_B + "\n").encode(),  # blank lines
        b"",  # zero bytes
    ],
    ids=[
        "no-final-newline",
        "crlf",
        "spaces",
        "unescaped-html",
        "empty-blocked-by",
        "null-blocked-by",
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
    line = {
        "schema_version": 2,
        "recipe": "jq",
        "ecosystem": "homebrew",
        "platform": "linux-alpine-musl-x86_64",
        "exit_code": 6,
        "category": "install_failed",
        "blocked_by": [],
        "timestamp": "2026-03-05T00:00:00Z",
        "evidence": [
            {
                "source": "validation_results",
                "names": [],
                "detail": "jq on linux-alpine-musl-x86_64: status fail, exit_code 6",
                "file": "validation-results-linux-alpine-musl-x86_64.json",
                "line": 1,
            }
        ],
    }
    return json.dumps(line) if spaced else codec.dumps_line(line)


@pytest.mark.parametrize("spaced", [False, True], ids=["as-migrate-writes", "another-writer"])
def test_a_file_already_v2_at_base_comes_back_exactly(fixture_repo, spaced):
    """A file that is v2 before any step (ingested early, or written by hand) is left as it
    is and recorded, so `down` gives back exactly what was there."""
    root = fixture_repo("sample")
    f = root / "data" / "failures" / "batch-2026-03-05T00-00-00Z.jsonl"
    f.write_text(_ingested_v2_line(spaced) + "\n")
    before = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    assert check_repo(repo).ok
    engine.down(repo, "base")
    assert snapshot(root) == before


def test_a_file_already_v2_and_changed_later_is_left_as_written_by_down(fixture_repo):
    root = fixture_repo("sample")
    f = root / "data" / "failures" / "batch-2026-03-05T00-00-00Z.jsonl"
    f.write_text(_ingested_v2_line(False) + "\n")
    repo = Store(root)
    engine.up(repo)
    rel = "data/failures/batch-2026-03-05T00-00-00Z.jsonl"
    theirs_at_head = (rel, "written at v2 by another writer: no step needed")
    assert engine.verify(repo)[0] == [] and theirs_at_head in engine.verify(repo)[1]
    f.write_text(f.read_text() + f.read_text())  # e.g. `migrate ingest` appended a line
    assert engine.verify(repo)[0] == []  # (v2: nothing for migrate to do)
    assert theirs_at_head in engine.verify(repo)[1]
    theirs = f.read_bytes()
    engine.down(repo, "base")
    assert f.read_bytes() == theirs


@pytest.mark.parametrize(
    "extra",
    ['"category_legacy":"old",', '"evidence":"see log",', '"reclassified_from":"x",'],
)
def test_a_v2_key_on_a_v1_line_is_refused_by_check_and_up_alike(tmp_path, extra):
    line = PROCS_B.replace('"timestamp"', extra + '"timestamp"')
    repo = make_repo(tmp_path, {"homebrew.jsonl": (line + "\n").encode()})
    (problem,) = check_repo(repo).problems
    assert "is a schema_version 2 key, on a version 1 line" in problem.reason
    from migrate.errors import BadInputError

    with pytest.raises(BadInputError) as exc:
        engine.up(repo)
    assert exc.value.problems == [str(problem)]


def test_a_line_go_reads_as_a_recipe_line_is_one_here_too(tmp_path):
    """tsuku's readers take a line as an envelope only when ``failures`` is an array."""
    line = PROCS_B.replace('"timestamp"', '"failures":null,"timestamp"')
    repo = make_repo(tmp_path, {"homebrew.jsonl": (line + "\n").encode()})
    report = check_repo(repo)
    assert report.ok and report.lines["recipe"] == 1
    assert [p.field for p in report.notes] == ["failures"]
