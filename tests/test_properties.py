"""Property-based: for generated v1 files, down(up(x)) == x byte for byte, up is idempotent."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path
from typing import get_args

from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate import codec, engine
from migrate.check import check_repo
from migrate.models import CategoryV1
from migrate.store import Store
from tests.helpers import data_only, snapshot

CATEGORIES = list(get_args(CategoryV1))
PLATFORMS = ["linux-glibc-x86_64", "linux-alpine-musl-arm64", "darwin-arm64"]
NAME = st.text(string.ascii_letters + string.digits + "@.+-_", min_size=1, max_size=12)
BLOCKER = NAME.filter(lambda n: ".." not in n)
MESSAGE = st.one_of(
    st.text(max_size=80),  # any unicode: <, >, &, U+2028, quotes, backslashes, newlines
    BLOCKER.map(lambda n: f"Error: registry: recipe {n} not found in registry"),
    st.just(""),
)


@st.composite
def timestamp(draw, dashes=False):
    d = draw(st.integers(1, 28))
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    sep = "-" if dashes else ":"
    frac = draw(st.one_of(st.just(""), st.integers(0, 10**9 - 1).map(lambda n: f".{n:09d}")))
    return f"2026-02-{d:02d}T{h:02d}{sep}{m:02d}{sep}{s:02d}{'' if dashes else frac}Z"


@st.composite
def envelope(draw):
    eco = draw(st.sampled_from(["homebrew", "github", "crates.io", "npm"]))
    items = []
    for _ in range(draw(st.integers(1, 4))):
        item = {"package_id": f"{eco}:{draw(NAME)}", "category": draw(st.sampled_from(CATEGORIES))}
        if draw(st.booleans()):
            item["blocked_by"] = draw(st.lists(BLOCKER, min_size=1, max_size=3, unique=True))
        item["message"] = draw(MESSAGE)
        item["timestamp"] = draw(timestamp())
        items.append(item)
    return codec.dumps_line(
        {
            "schema_version": 1,
            "ecosystem": eco,
            "environment": "linux-glibc-x86_64",
            "updated_at": draw(timestamp(dashes=draw(st.booleans()))),
            "failures": items,
        }
    )


@st.composite
def platform_line(draw):
    line = {
        "schema_version": 1,
        "recipe": draw(NAME),
        "platform": draw(st.sampled_from(PLATFORMS)),
        "exit_code": draw(st.sampled_from([1, 5, 6, 8, 124, 137])),
        "category": draw(st.sampled_from(CATEGORIES)),
    }
    if draw(st.booleans()):
        line["blocked_by"] = draw(st.lists(BLOCKER, max_size=2, unique=True))
    if draw(st.integers(0, 4)) == 0:  # a newer writer's keys, one of them unknown
        line |= {"workflow_url": "https://ci/1", "message": draw(MESSAGE), "zz": [1]}
    line["timestamp"] = draw(timestamp())
    return codec.dumps_line(line)


@st.composite
def v2_line(draw):
    """A v2 line already in a v1 file (e.g. added by `migrate ingest`), an envelope or a
    per-recipe line, spelled by this tool or by another writer (ASCII escapes, raw <, >,
    &): step 0001 passes it through."""
    blocked = draw(st.one_of(st.none(), st.lists(BLOCKER, max_size=2, unique=True)))
    rec = {
        "category": draw(st.sampled_from(["install_failed", "missing_dep", "network_error"])),
        "blocked_by": blocked,
    }
    if blocked is not None:
        evidence = {"source": "validation_results", "names": blocked, "detail": "d"}
    if draw(st.booleans()):
        eco = draw(st.sampled_from(["homebrew", "github"]))
        item = {"package_id": f"{eco}:{draw(NAME)}", **rec, "message": draw(MESSAGE)}
        item["timestamp"] = draw(timestamp())
        if blocked is not None:
            item["evidence"] = [evidence]
        line = {
            "schema_version": 2,
            "ecosystem": eco,
            "environment": "linux-glibc-x86_64",
            "updated_at": draw(timestamp(dashes=True)),
            "failures": [item],
        }
    else:
        line = {
            "schema_version": 2,
            "recipe": draw(NAME),
            "ecosystem": draw(st.sampled_from(["homebrew", None])),
            "platform": draw(st.sampled_from(PLATFORMS)),
            "exit_code": draw(st.sampled_from([1, 6, 8])),
            **rec,
            "timestamp": draw(timestamp()),
        }
        if blocked is not None:
            line["evidence"] = [evidence]
    if draw(st.booleans()):
        return codec.dumps_line(line)
    return json.dumps(line, separators=(",", ":"), ensure_ascii=True)


@st.composite
def failure_file(draw):
    lines = draw(
        st.lists(st.one_of(envelope(), platform_line(), v2_line(), st.just("")), max_size=6)
    )
    if draw(st.booleans()):  # a writer other than Go's: other spacing and escaping
        lines = [json.dumps(json.loads(x)) if x else x for x in lines]
    body = ("\r\n" if draw(st.integers(0, 5)) == 0 else "\n").join(lines)
    if lines and draw(st.booleans()):
        body += "\n"
    return body.encode("utf-8", "surrogatepass")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.dictionaries(
        st.sampled_from(
            [
                "homebrew.jsonl",
                "homebrew-2026-02-07T03-03-36Z.jsonl",
                "batch-2026-02-18T15-51-38Z.jsonl",
                "npm-2026-02-19T14-15-55Z.jsonl",
            ]
        ),
        failure_file(),
        min_size=1,
        max_size=3,
    )
)
def test_up_down_is_byte_exact_and_up_is_idempotent(files):
    with tempfile.TemporaryDirectory() as tmp, freeze_time("2026-03-04 05:06:07"):
        root = Path(tmp)
        (root / "data" / "failures").mkdir(parents=True)
        for name, data in files.items():
            (root / "data" / "failures" / name).write_bytes(data)
        repo = Store(root)
        original = snapshot(root)
        engine.up(repo)
        report = check_repo(repo)
        assert report.ok, [str(p) for p in report.problems]
        once = snapshot(root)
        engine.up(repo)
        assert snapshot(root) == once
        engine.down(repo, "base")
        assert snapshot(root) == original
        engine.up(repo)
        assert data_only(snapshot(root)) == data_only(once)
