"""Inputs at the edges of the decoders and validators (orjson, the strict decoder, pydantic)
behave as the strict, line-by-line reading does: refused with the line, or exact on
rollback."""

from __future__ import annotations

import json

import pytest

from migrate import codec, engine
from migrate.errors import MigrateError
from migrate.store import Store
from tests.conftest import FIXTURES, copy_repo
from tests.helpers import data_only, refused_up, snapshot

B_LINE = (
    '{"schema_version":1,"recipe":"%s","platform":"linux-glibc-x86_64","exit_code":%s,'
    '"category":"deterministic","timestamp":"2026-03-09T01:02:03Z"}\n'
)


def _add(root, name, text):
    (root / "data" / "failures" / name).write_text(text)


def test_an_exit_code_beyond_64_bits_survives_up_and_down(fixture_repo):
    root = fixture_repo("sample")
    _add(root, "homebrew-2026-03-09T00-00-00Z.jsonl", B_LINE % ("zlib", 2**64))
    before = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    line = (root / "data/failures/homebrew-2026-03-09T00-00-00Z.jsonl").read_bytes()
    assert b'"exit_code":18446744073709551616,' in line
    engine.down(repo, "base")
    assert snapshot(root) == before
    assert codec.loads(line)["exit_code"] == 2**64


@pytest.mark.parametrize("version", ["true", "1.0"])
def test_schema_version_must_be_the_integer_1(fixture_repo, version):
    root = fixture_repo("sample")
    _add(
        root,
        "homebrew-2026-03-09T00-00-00Z.jsonl",
        (B_LINE % ("zlib", 6)).replace('"schema_version":1', f'"schema_version":{version}'),
    )
    problems = refused_up(root).problems
    assert any("schema_version" in p for p in problems), problems


def test_a_recipe_name_v2_refuses_is_refused_at_v1_too(fixture_repo):
    root = fixture_repo("sample")
    _add(root, "homebrew-2026-03-09T00-00-00Z.jsonl", B_LINE % ("foo bar", 6))
    problems = refused_up(root).problems
    assert any(
        p.startswith("data/failures/homebrew-2026-03-09T00-00-00Z.jsonl:1: recipe")
        for p in problems
    ), problems


def _batch_ids(root):
    return [
        json.loads(line)["ecosystem"]
        for f in sorted((root / "data" / "failures").glob("batch-*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]


def test_a_queue_string_only_the_strict_decoder_reads_is_not_a_traceback(fixture_repo, tmp_path):
    plain = fixture_repo("sample")
    engine.up(Store(plain), "0001")
    root = copy_repo(FIXTURES / "sample", tmp_path / "edited")
    q = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["entries"][0]["disambiguated_at"] = "x\ud800"  # a lone surrogate, escaped
    q.write_text(json.dumps(doc, indent=2) + "\n")
    engine.up(Store(root), "0001")  # the queue still names the batch files' packages
    assert _batch_ids(root) == _batch_ids(plain) and any(_batch_ids(root))
    with pytest.raises(MigrateError):  # step 0003 cannot write it back: refused, named
        engine.up(Store(root))


def test_a_broken_line_this_tool_did_not_write_is_refused_by_step_0003(fixture_repo):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo, "0002")
    f = root / "data" / "failures" / "homebrew-2026-02-07T03-03-36Z.jsonl"
    first = f.read_bytes().split(b"\n")[0]
    broken = first.replace(b'"message":"', b'"message":"\\q', 1)
    f.write_bytes(f.read_bytes() + broken + b"\n")
    n = f.read_bytes().count(b"\n")
    problems = refused_up(root).problems
    assert any(p.startswith(f"{f.relative_to(root).as_posix()}:{n}:") for p in problems)


def test_ties_are_broken_by_file_order_even_when_a_line_spells_the_id_with_escapes(tmp_path):
    from migrate.failures_index import latest_package_failures

    def env(pid_json, category):
        return (
            (
                '{"schema_version":2,"ecosystem":"homebrew","environment":"linux-glibc-x86_64",'
                '"updated_at":"2026-02-07T03-03-36Z","failures":[{"package_id":PID,'
                '"category":"CAT","blocked_by":null,"message":"m",'
                '"timestamp":"2026-02-07T03:03:36Z"}]}'
            )
            .replace("PID", pid_json)
            .replace("CAT", category)
        )

    (tmp_path / "data" / "failures").mkdir(parents=True)
    rel = "data/failures/homebrew.jsonl"
    lines = [
        env('"homebrew:a"', "install_failed"),
        env('"homebrew:\\u0061"', "network_error"),
        env('"homebrew:a"', "missing_dep"),
    ]
    (tmp_path / rel).write_text("\n".join(lines) + "\n")
    latest = latest_package_failures(Store(tmp_path))
    assert (latest["homebrew:a"].category, latest["homebrew:a"].where) == (
        "missing_dep",
        f"{rel}:3",
    )


@pytest.mark.parametrize("edit", ["escape", "crlf", "no-final-newline"])
def test_step_0002_on_lines_it_did_not_write_comes_out_canonical_and_back_exact(fixture_repo, edit):
    root = fixture_repo("sample")
    repo = Store(root)
    engine.up(repo, "0001")
    f = root / "data" / "failures" / "homebrew-2026-02-07T03-03-36Z.jsonl"
    lines = f.read_bytes().split(b"\n")
    i = next(i for i, line in enumerate(lines) if b"not found in registry" in line)
    if edit == "escape":
        lines[i] = lines[i].replace(b'"message":"', b'"message":"\\u0020', 1)
    elif edit == "crlf":
        lines[i] += b"\r"
    body = b"\n".join(lines)
    f.write_bytes(body.rstrip(b"\n") if edit == "no-final-newline" else body)
    before = snapshot(root)
    engine.up(repo, "0002")
    new = f.read_bytes().split(b"\n")[i]
    assert codec.dumps_bytes(codec.loads(new)) == new
    engine.down(repo, "0001")
    assert data_only(snapshot(root)) == data_only(before)


def test_an_envelope_with_no_records_goes_up_and_back(fixture_repo):
    root = fixture_repo("sample")
    _add(
        root,
        "homebrew-2026-03-05T00-00-00Z.jsonl",
        '{"schema_version":1,"ecosystem":"homebrew","environment":"linux-glibc-x86_64",'
        '"updated_at":"2026-03-05T00-00-00Z","failures":[]}\n',
    )
    before = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    engine.down(repo, "base")
    assert snapshot(root) == before


V2 = (
    '{"schema_version":2,"ecosystem":"homebrew","environment":"linux-glibc-x86_64",'
    '"updated_at":"2026-03-05T00-00-00Z","failures":[{"package_id":"homebrew:tmux",'
    '"category":"install_failed","blocked_by":null,"message":"MSG",'
    '"timestamp":"2026-03-05T00:00:00Z"}]}\n'
)


@pytest.mark.parametrize(
    "hidden", ['"package_\\u0069d":"homebrew:zzzz",', '"package_id" :"homebrew:zzzz",']
)
def test_a_duplicate_key_hidden_by_an_escape_or_a_blank_is_refused(fixture_repo, hidden):
    from migrate.check import check_repo

    root = fixture_repo("sample")
    line = V2.replace('"category"', hidden + '"category"').replace("MSG", "m")
    _add(root, "homebrew-2026-03-05T00-00-00Z.jsonl", line)
    report = check_repo(Store(root))
    assert any("duplicate key" in p.reason for p in report.problems), report.problems
    refused_up(root)


def test_a_v2_line_passed_through_and_backfilled_comes_out_canonical(fixture_repo):
    root = fixture_repo("sample")
    msg = "caf\\u00e9 Error: registry: recipe libevent2 not found in registry"
    name = "homebrew-2026-03-05T00-00-00Z.jsonl"
    v1 = B_LINE % ("zlib", 6)
    _add(root, name, v1 + V2.replace("MSG", msg))
    before = snapshot(root)
    repo = Store(root)
    engine.up(repo)
    line = (root / "data" / "failures" / name).read_bytes().split(b"\n")[1]
    rec = codec.loads(line)["failures"][0]
    assert rec["blocked_by"] == ["libevent2"] and "café" in rec["message"]
    assert codec.dumps_bytes(codec.loads(line)) == line
    engine.down(repo, "base")
    assert snapshot(root) == before
