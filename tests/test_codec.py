"""The codec writes bytes identical to the upstream Go/jq writers, and reads strictly."""

from __future__ import annotations

import pytest

from migrate import codec
from migrate.reader import split_lines
from tests.conftest import FIXTURES, SNAPSHOTS, corpus_snapshot


def _reencode_failures(root):
    files = sorted((root / "data" / "failures").glob("*.jsonl"))
    assert files
    n = 0
    for f in files:
        for lineno, raw in split_lines(f.read_bytes()):
            if not raw.strip():
                continue
            assert codec.dumps_line(codec.loads(raw)).encode() == raw, f"{f.name}:{lineno}"
            n += 1
    return n


def _reencode_queues(root):
    files = sorted(root.glob("data/queues/*.json")) + sorted(root.glob("data/priority-queue.json"))
    for f in files:
        raw = f.read_bytes()
        text = raw.decode()
        assert codec.dumps_queue(codec.loads(raw), codec.escapes_html(text)).encode() == raw, f
    return len(files)


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_every_real_line_and_queue_reencodes_identically(snapshot):
    root = corpus_snapshot(snapshot)
    assert _reencode_failures(root) > 100
    assert _reencode_queues(root) >= 1


@pytest.mark.parametrize("name", ["sample", "anomalies", "early-layout"])
def test_fixture_lines_reencode_identically(name):
    _reencode_failures(FIXTURES / name)
    _reencode_queues(FIXTURES / name)


def test_go_escaping_of_html_and_line_separators():
    obj = {"message": "a <ecosystem> & b\u2028c", "n": "é"}
    assert codec.dumps_line(obj) == (
        '{"message":"a \\u003cecosystem\\u003e \\u0026 b\\u2028c","n":"é"}'
    )
    assert codec.dumps_queue({"t": ">10K"}, escape_html=False) == '{\n  "t": ">10K"\n}\n'
    assert codec.dumps_queue({"t": ">10K", "e": []}) == '{\n  "t": "\\u003e10K",\n  "e": []\n}\n'


def test_escapes_html_detects_the_legacy_writer():
    assert codec.escapes_html('{"t": "\\u003e10K"}')
    assert not codec.escapes_html('{"t": ">10K"}')


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"a":NaN}', "NaN is not valid JSON"),
        (b'{"a":Infinity}', "Infinity is not valid JSON"),
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'\xef\xbb\xbf{"a":1}', "byte-order mark"),
        (b'{"a":"\xff"}', "invalid UTF-8 at byte 6"),
        (b'{"a":"x\x00"}', "NUL byte"),
        (b'{"a":', "invalid JSON"),
        (b"[" * 100000, "nested too deeply"),
    ],
)
def test_strict_decode_names_the_problem(raw, reason):
    with pytest.raises(codec.DecodeError, match=reason):
        codec.loads(raw)
