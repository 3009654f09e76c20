"""The flat view of records (one row each) and each package's latest failure."""

from __future__ import annotations

import pytest

from migrate import codec, engine
from migrate.failures_index import file_rows, latest_package_failures
from migrate.queues import load_queue_docs, name_index
from migrate.store import Store
from tests.helpers import records

SAME_AT_EVERY_VERSION = ("file", "line", "scope", "name", "platform", "timestamp", "run")


def _rows(repo, want):
    names = name_index(load_queue_docs(repo))
    out = []
    for ff in repo.failure_files():
        rows, problems = file_rows(ff.rel, repo.read_bytes(ff.rel), names.get, want=want)
        assert not problems
        out.extend(rows)
    return out


@pytest.mark.parametrize("name", ["sample", "anomalies", "early-layout"])
def test_the_flat_view_is_the_same_records_at_v1_and_at_v2(fixture_repo, name):
    """One row per record, read from v1 lines or from their v2 form: the same records, in
    the same order, with the same package, place and time; blockers only ever gained."""
    root = fixture_repo(name)
    repo = Store(root)
    before = _rows(repo, want=1)
    engine.up(repo, "0002")
    after = _rows(repo, want=2)
    assert len(before) == len(after) == len(records(root))
    for b, a, r in zip(before, after, records(root), strict=True):
        assert {k: b[k] for k in SAME_AT_EVERY_VERSION} == {k: a[k] for k in SAME_AT_EVERY_VERSION}
        assert b["file"].endswith(r["file"]) and (b["line"], b["name"]) == (r["line"], r["name"])
        assert a["package_id"] == r["package_id"]  # what the v2 line states
        assert b["package_id"] in (a["package_id"], None) or b["scope"] == "package"
        assert set(b["blocked_by"] or []) <= set(a["blocked_by"] or [])
        if a["category"] != b["category"]:
            assert a["category"] == "missing_dep" and a["reclassified_from"] == b["category"]


def _env(pid: str, ts: str, category: str = "install_failed") -> bytes:
    return codec.dumps_bytes(
        {
            "schema_version": 2,
            "ecosystem": pid.split(":")[0],
            "environment": "linux-glibc-x86_64",
            "updated_at": "2026-02-01T00-00-00Z",
            "failures": [
                {
                    "package_id": pid,
                    "category": category,
                    "blocked_by": None,
                    "message": "m",
                    "timestamp": ts,
                }
            ],
        }
    )


def test_latest_by_time_not_by_text_and_platform_lines_never_count(tmp_path):
    (tmp_path / "data" / "failures").mkdir(parents=True)
    f = tmp_path / "data" / "failures" / "homebrew.jsonl"
    recipe = (
        b'{"schema_version":2,"recipe":"a","ecosystem":"homebrew","platform":"darwin-arm64",'
        b'"exit_code":8,"category":"missing_dep","blocked_by":null,'
        b'"timestamp":"2026-03-01T00:00:00Z"}'
    )
    f.write_bytes(
        b"\n".join(
            [
                _env("homebrew:a", "2026-02-01T00:00:00.9Z", "network_error"),
                _env("homebrew:a", "2026-02-01T00:00:00.10Z", "verify_failed"),  # earlier
                recipe,  # later, but a platform record
                b"",
            ]
        )
    )
    latest = latest_package_failures(Store(tmp_path))
    assert latest["homebrew:a"].category == "network_error"
    assert latest["homebrew:a"].where == "data/failures/homebrew.jsonl:1"
