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
        (b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}", "nested too deeply"),  # (orjson reads it)
    ],
)
def test_strict_decode_names_the_problem(raw, reason):
    with pytest.raises(codec.DecodeError, match=reason):
        codec.loads(raw)


# --- the encoder (orjson) against the reference (the standard library) ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from('<>&\u2028\u2029"\\\n\x00\x7f')
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON, st.booleans())
def test_fast_encoder_writes_the_reference_bytes_and_reads_them_back(value, escape_html):
    fast = codec.dumps_bytes(value, escape_html)
    assert fast == codec.dumps_line_stdlib(value, escape_html).encode("utf-8")
    assert codec.loads(fast) == value
    assert codec.dumps_queue(value, escape_html) == codec.dumps_queue_stdlib(value, escape_html)


def test_values_orjson_refuses_go_through_the_reference_encoder():
    big = {"n": 2**70, "s": "a<b"}
    assert codec.dumps_bytes(big) == b'{"n":1180591620717411303424,"s":"a\\u003cb"}'
    with pytest.raises(ValueError):
        codec.dumps_bytes({"x": float("nan")} | {1: 2})  # non-str key: stdlib, then NaN
