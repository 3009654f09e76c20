"""Whole-repo reads of v2 lines by byte scans agree with decoding every line."""

from __future__ import annotations

import pytest

from migrate import codec, engine
from migrate.failures_index import (
    _latest_fast,
    _latest_in_file,
    all_v2_lines,
    latest_package_failures,
    lines_with,
)
from migrate.repo import DataRepo


def _slow(repo, rel, only=None):
    """The line-by-line path, forced."""
    import migrate.failures_index as fi

    fast, fi._latest_fast = fi._latest_fast, lambda *a: None
    try:
        return _latest_in_file(repo, rel, only)
    finally:
        fi._latest_fast = fast


@pytest.mark.parametrize("name", ["sample", "anomalies", "early-layout"])
def test_regex_scan_and_line_by_line_agree_on_fixtures(fixture_repo, name):
    root = fixture_repo(name)
    repo = DataRepo(root)
    engine.up(repo, "0002")
    seen = 0
    for ff in repo.failure_files():
        data = repo.read_bytes(ff.rel)
        slow, problems = _slow(repo, ff.rel)
        assert not problems
        fast = _latest_fast(ff.rel, data, None)
        if fast is not None:
            seen += 1
            assert fast == slow, ff.rel
    assert seen, "no file took the fast path"


def _line(pid, ts, category="install_failed", blocked=None, message="m"):
    eco, _, name = pid.partition(":")
    return codec.dumps_bytes(
        {
            "schema_version": 2,
            "package_id": pid,
            "ecosystem": eco,
            "name": name,
            "scope": "package",
            "platform": "linux-glibc-x86_64",
            "category": category,
            "category_legacy": None,
            "reclassified_from": None,
            "exit_code": None,
            "blocked_by": blocked,
            "evidence": [],
            "message": message,
            "message_truncated": False,
            "timestamp": ts,
            "run": None,
        }
    )


def tie_lines() -> list[bytes]:
    """Package lines whose latest record needs time, not text, and file order for ties."""
    return [
        _line("homebrew:a", "2026-02-07T03:03:36.5Z", blocked=["x"]),
        _line("homebrew:a", "2026-02-07T03:03:36.49Z"),  # earlier, though it sorts later
        _line("homebrew:b", "2026-02-07T03-03-36Z", "recipe_not_found"),  # dashed layout
        _line("homebrew:b", "2026-02-07T03:03:36Z", "network_error"),  # same instant: later wins
        _line("homebrew:c", "2026-02-07T03:03:36Z", message='"timestamp":"2099-01-01T00:00:00Z"'),
        _line("homebrew:c", "2026-02-07T03:03:35Z"),
    ]


def test_latest_by_time_not_by_text_and_ties_go_to_the_later_line(tmp_path):
    lines = tie_lines()
    (tmp_path / "data" / "failures").mkdir(parents=True)
    rel = "data/failures/homebrew.jsonl"
    (tmp_path / rel).write_bytes(b"\n".join(lines) + b"\n")
    repo = DataRepo(tmp_path)
    fast = _latest_fast(rel, repo.read_bytes(rel), None)
    assert fast == _slow(repo, rel)[0]
    assert (fast["homebrew:a"].blocked_by, fast["homebrew:a"].where) == (["x"], f"{rel}:1")
    assert (fast["homebrew:b"].category, fast["homebrew:b"].where) == ("network_error", f"{rel}:4")
    assert fast["homebrew:c"].where == f"{rel}:5"
    only = latest_package_failures(repo, only={"homebrew:b", "homebrew:zz"})
    assert list(only) == ["homebrew:b"] and only["homebrew:b"] == fast["homebrew:b"]


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"schema_version":2,"a":1}\n{"schema_version":2,"b":2}\n', True),
        (b'{"schema_version":2,"a":1}\n{"schema_version":2,"b":2}', True),
        (b"", False),
        (b'{"schema_version":2,"a":1}\n\n', False),  # a blank line
        (b'{"schema_version":2,\n', False),  # cut short
        (b'{"schema_version":2,"a":1}\r\n', False),  # CRLF
        (b'{"schema_version":2,"a":1}\n{"schema_version":1,"b":2}\n', False),
        (b'{"schema_version":2,"a":1}\n<<<<<<< HEAD\n', False),
    ],
)
def test_all_v2_lines(data, expected):
    assert all_v2_lines(data) is expected


def test_lines_with_gives_line_numbers_and_whole_lines():
    data = b"a\nxb\nc\nbx\n"
    assert list(lines_with(data, b"b")) == [(2, b"xb"), (4, b"bx")]
