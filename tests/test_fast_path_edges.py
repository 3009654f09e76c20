"""Inputs at the edges of the fast paths (orjson, pydantic's JSON parser, byte scans) behave
as the strict, line-by-line reading does: refused with the line, or exact on rollback."""

from __future__ import annotations

import json

import pytest

from migrate import codec, engine
from migrate.errors import MigrateError
from migrate.repo import DataRepo
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
    repo = DataRepo(root)
    engine.up(repo)
    line = (root / "data/failures/homebrew-2026-03-09T00-00-00Z.jsonl").read_bytes()
    assert b'"exit_code":18446744073709551616,' in line
    engine.down(repo, "base")
    assert snapshot(root) == before
    assert codec.loads_record(line)["exit_code"] == 2**64


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


def test_a_platform_line_whose_package_id_v2_refuses_is_refused(fixture_repo):
    root = fixture_repo("sample")
    _add(root, "homebrew-2026-03-09T00-00-00Z.jsonl", B_LINE % ("foo bar", 6))
    problems = refused_up(root).problems
    assert any(
        p.startswith("data/failures/homebrew-2026-03-09T00-00-00Z.jsonl:1: package_id")
        for p in problems
    ), problems


def _batch_ids(root):
    return [
        json.loads(line)["package_id"]
        for f in sorted((root / "data" / "failures").glob("batch-*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]


def test_a_queue_string_only_the_strict_decoder_reads_is_not_a_traceback(fixture_repo, tmp_path):
    plain = fixture_repo("sample")
    engine.up(DataRepo(plain), "0001")
    root = copy_repo(FIXTURES / "sample", tmp_path / "edited")
    q = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_text())
    doc["entries"][0]["confidence"] = "auto\ud800"  # a lone surrogate, escaped
    q.write_text(json.dumps(doc, indent=2) + "\n")
    engine.up(DataRepo(root), "0001")  # the queue still names the batch files' packages
    assert _batch_ids(root) == _batch_ids(plain) and any(_batch_ids(root))
    with pytest.raises(MigrateError):  # step 0003 cannot write it back: refused, named
        engine.up(DataRepo(root))


def test_a_broken_line_this_tool_did_not_write_is_refused_by_step_0003(fixture_repo):
    root = fixture_repo("sample")
    repo = DataRepo(root)
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

    def rec(pid_json, category):
        return (
            (
                '{"schema_version":2,"package_id":PID,"ecosystem":"homebrew","name":"a",'
                '"scope":"package","platform":"linux-glibc-x86_64","category":"CAT",'
                '"category_legacy":null,"reclassified_from":null,"exit_code":null,'
                '"blocked_by":null,"evidence":[],"message":"m","message_truncated":false,'
                '"timestamp":"2026-02-07T03:03:36Z","run":null}'
            )
            .replace("PID", pid_json)
            .replace("CAT", category)
        )

    (tmp_path / "data" / "failures").mkdir(parents=True)
    rel = "data/failures/homebrew.jsonl"
    lines = [
        rec('"homebrew:a"', "install_failed"),
        rec('"homebrew:\\u0061"', "network_error"),
        rec('"homebrew:a"', "missing_dep"),
    ]
    (tmp_path / rel).write_text("\n".join(lines) + "\n")
    latest = latest_package_failures(DataRepo(tmp_path))
    assert (latest["homebrew:a"].category, latest["homebrew:a"].where) == (
        "missing_dep",
        f"{rel}:3",
    )


@pytest.mark.parametrize("edit", ["escape", "crlf", "no-final-newline"])
def test_step_0002_on_lines_it_did_not_write_comes_out_canonical_and_back_exact(fixture_repo, edit):
    root = fixture_repo("sample")
    repo = DataRepo(root)
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
    repo = DataRepo(root)
    engine.up(repo)
    engine.down(repo, "base")
    assert snapshot(root) == before


V2 = (
    '{"schema_version":2,"package_id":"homebrew:tmux","ecosystem":"homebrew","name":"tmux",'
    '"scope":"package","platform":"linux-glibc-x86_64","category":"install_failed",'
    '"category_legacy":null,"reclassified_from":null,"exit_code":null,"blocked_by":null,'
    '"evidence":[],"message":"MSG","message_truncated":false,'
    '"timestamp":"2026-03-05T00:00:00Z","run":null}\n'
)


@pytest.mark.parametrize(
    "hidden", ['"package_\\u0069d":"homebrew:zzzz",', '"package_id" :"homebrew:zzzz",']
)
def test_a_duplicate_key_hidden_by_an_escape_or_a_blank_is_refused(fixture_repo, hidden):
    from migrate.check import check_repo

    root = fixture_repo("sample")
    line = V2.replace('"ecosystem"', hidden + '"ecosystem"').replace("MSG", "m")
    _add(root, "homebrew-2026-03-05T00-00-00Z.jsonl", line)
    report = check_repo(DataRepo(root))
    assert any("duplicate key" in p.reason for p in report.problems), report.problems
    refused_up(root)


def test_a_v2_line_passed_through_and_backfilled_comes_out_canonical(fixture_repo):
    root = fixture_repo("sample")
    msg = "caf\\u00e9 Error: registry: recipe libevent2 not found in registry"
    name = "homebrew-2026-03-05T00-00-00Z.jsonl"
    v1 = B_LINE % ("zlib", 6)
    _add(root, name, v1 + V2.replace("MSG", msg))
    before = snapshot(root)
    repo = DataRepo(root)
    engine.up(repo)
    line = (root / "data" / "failures" / name).read_bytes().split(b"\n")[1]
    rec = codec.loads(line)
    assert rec["blocked_by"] == ["libevent2"] and "café" in rec["message"]
    assert codec.dumps_bytes(rec) == line
    engine.down(repo, "base")
    assert snapshot(root) == before


def test_up_runs_when_an_applied_steps_detail_file_is_missing(fixture_repo):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    engine.up(repo, "0001")
    (root / "data" / ".migrate" / "0001-records-v2.jsonl").unlink()
    engine.up(repo)  # reads those files line by line instead
    assert engine.status(repo)["current"] == "0003"


def _rules(schema):
    """A JSON Schema without what does not validate (titles, docs, defaults of null: an
    absent optional key reads as null on both sides), the dict classes named as the models."""
    if isinstance(schema, dict):
        return {
            k.replace("Dict", ""): _rules(v)
            for k, v in schema.items()
            if k not in ("title", "description") and not (k == "default" and v is None)
        }
    if isinstance(schema, list):
        return [_rules(v) for v in schema]
    return schema.replace("Dict", "") if isinstance(schema, str) else schema


@pytest.mark.parametrize(
    "adapters,key,model",
    [
        ("V1_DICTS", "A", "EnvelopeV1"),
        ("V1_DICTS", "B", "PlatformLineV1"),
        ("QUEUE_V2_DICTS", "legacy", "LegacyQueueV2"),
        ("QUEUE_V2_DICTS", "unified", "UnifiedQueueV2"),
    ],
)
def test_the_dict_validators_have_the_field_rules_of_their_models(adapters, key, model):
    from migrate import models

    assert _rules(getattr(models, adapters)[key].json_schema()) == _rules(
        getattr(models, model).model_json_schema()
    )


def _queue_mutations(doc, key):
    """A v2 queue, and variants at the edges of its rules: each entry's status set to
    each value (with and without blockers), blockers added, removed, null, refused by
    their rule; a wrong type, a key too many, a bad timestamp."""
    yield doc
    entries = doc[key]
    statuses = sorted({e["status"] for e in entries} | {"blocked", "pending", "generated"})
    for i in range(min(len(entries), 6)):
        e = entries[i]
        bare = {k: v for k, v in e.items() if k != "blocked_by"}
        variants = [bare, {**bare, "blocked_by": None}, {**bare, "blocked_by": ["zlib"]}]
        variants += [{**e, "blocked_by": ["a..b"]}, {**e, "blocked_by": ["x y"]}]
        variants += [{**e, "priority": "1"}, {**e, "tier": True}, {**e, "extra": 1}]
        variants += [{**e, "added_at": "2026-01-01"}, {k: v for k, v in e.items() if k != "name"}]
        for status in statuses:
            variants += [{**v, "status": status} for v in variants[:3]]
        for v in variants:
            yield {**doc, key: [*entries[:i], v, *entries[i + 1 :]]}
    yield {**doc, "updated_at": "yesterday"}
    yield {**doc, "schema_version": 1}


def test_the_v2_queue_test_accepts_and_refuses_what_the_models_do(fixture_repo):
    from pydantic import ValidationError

    from migrate import engine, models

    root = fixture_repo("sample")
    engine.up(DataRepo(root))
    seen = 0
    for path in sorted((root / "data" / "queues").glob("priority-queue*.json")):
        doc = json.loads(path.read_bytes())
        kind, key = ("legacy", "packages") if "packages" in doc else ("unified", "entries")
        model = models.LegacyQueueV2 if kind == "legacy" else models.UnifiedQueueV2
        for variant in _queue_mutations(doc, key):
            try:
                model.model_validate(variant)
                want = True
            except ValidationError:
                want = False
            assert models.queue_v2_valid(kind, variant) == want, variant
            seen += 1
    assert seen > 200


def _v1_lines():
    for path in sorted(FIXTURES.glob("*/data/failures/*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                continue  # a broken line (the anomalies fixture): not the validators' business
            if isinstance(obj, dict) and obj.get("schema_version") == 1:
                yield obj


def _mutations(obj):
    """Each line, and variants at the edges of the rules: a key dropped, a key added, a
    wrong type, a blocker name v1 refuses, a bad timestamp."""
    yield obj
    items = obj.get("failures")
    item = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else obj
    for key in list(item):
        dropped = {k: v for k, v in item.items() if k != key}
        yield dropped if item is obj else {**obj, "failures": [dropped]}
    if item is not obj:
        for key in list(obj):
            yield {k: v for k, v in obj.items() if k != key}
    for change in (
        {"extra": 1},
        {"subcategory": "x"},
        {"subcategory": None},
        {"blocked_by": ["a..b"]},
        {"blocked_by": ["ok", "b<c"]},
        {"blocked_by": None},
        {"blocked_by": "zlib"},
        {"timestamp": "2026-03-09 01:02:03"},
        {"category": "api_error"},
        {"category": "nope"},
        {"exit_code": "8"},
        {"exit_code": True},
        {"exit_code": 8.0},
        {"exit_code": 2**64},
        {"message": None},
        {"package_id": "Homebrew:x"},
        {"platform": "windows-x86_64"},
    ):
        if item is obj:
            yield {**obj, **change}
        else:
            yield {**obj, "failures": [{**item, **change}]}
            yield {**obj, **change}


def test_step_0001s_fast_path_accepts_and_refuses_what_the_models_do():
    from pydantic import ValidationError

    from migrate import models
    from migrate.steps.s0001_records_v2 import fast_v1

    seen = 0
    for original in _v1_lines():
        shape = "A" if "failures" in original else "B"
        model = models.EnvelopeV1 if shape == "A" else models.PlatformLineV1
        for obj in _mutations(original):
            line = json.dumps(obj, separators=(",", ":"))
            try:
                want = model.model_validate_json(line).model_dump()
            except ValidationError:
                want = None
            got = fast_v1(shape, line.encode())
            if got is not None:  # absent optional keys read as null, as in the model
                for item in got.get("failures", [got]):
                    item.setdefault("blocked_by", None)
                    if shape == "A":
                        item.setdefault("subcategory", None)
            if got is None and want is not None:
                # a line the fast path leaves to the strict one, which reads it: only an
                # integer beyond 64 bits (orjson reads it as a float)
                assert str(2**64) in line, line
                continue
            assert got == want, line
            seen += 1
    assert seen > 500
