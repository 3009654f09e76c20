"""The model of tsuku's queue-maintain (tests/tsuku_model.py) against tsuku's own binary,
and step 0003's rules against the model: a fixed point, on generated cases."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from migrate import codec, engine
from migrate.status_rules import Resolved, decide, name_records
from migrate.store import Store
from tests import tsuku_model as tm
from tests.conftest import CORPUS, copy_repo, corpus_snapshot
from tests.test_live_repo import apply_commit

QM_BINARY = CORPUS.parent / "tools" / "tsuku" / "queue-maintain"
needs_binary = pytest.mark.skipif(
    not QM_BINARY.exists(), reason="tsuku's queue-maintain is not here"
)


def _compare(root: Path, tmp_path: Path) -> None:
    """The binary and the model on copies of ``root``: the same queue, field by field (the
    binary reads the clock: the model is given the time the binary wrote), in the same
    order where the records' blockers form no cycle (see tests/tsuku_model.py)."""
    a, b = copy_repo(root, tmp_path / "binary"), copy_repo(root, tmp_path / "model")
    subprocess.run([str(QM_BINARY)], cwd=a, capture_output=True, check=True)
    got = json.loads((a / tm.QUEUE).read_text())
    now = tm._parse(got["updated_at"])
    tm.queue_maintain(b, now + timedelta(microseconds=999_999))
    want = json.loads((b / tm.QUEUE).read_text())
    assert got["schema_version"] == want["schema_version"]
    if tm.Records(root).cyclic():
        got["entries"].sort(key=lambda e: e["source"])
        want["entries"].sort(key=lambda e: e["source"])
    assert [e["source"] for e in got["entries"]] == [e["source"] for e in want["entries"]]
    for x, y in zip(got["entries"], want["entries"], strict=True):
        for key in tm.STRUCT:
            if key == "next_retry_at" and x[key] and y[key]:  # (both: now + the backoff)
                assert abs((tm._parse(x[key]) - tm._parse(y[key])).total_seconds()) < 2
            else:
                assert x[key] == y[key], (x["source"], key)
    shutil.rmtree(a)
    shutil.rmtree(b)


@needs_binary
@pytest.mark.parametrize("migrated", [False, True], ids=["as-upstream", "migrated"])
def test_the_model_is_tsukus_queue_maintain_on_every_real_state(tmp_path, migrated):
    """2026-03-02 and each of the 24 replayed commits, as upstream had them and migrated:
    statuses, failure counts, backoffs and the order, entry by entry."""
    root = copy_repo(corpus_snapshot("2026-03-02"), tmp_path / "repo")
    commits = sorted(p for p in (CORPUS / "replay-2026-03-03").iterdir() if p.is_dir())
    for i, commit in enumerate([None, *commits]):
        if commit is not None:
            apply_commit(root, commit)
        if migrated:
            engine.up(Store(root))
        if i % 3 == 0 or i == len(commits):  # (every third state: the suite's time)
            _compare(root, tmp_path / f"cmp{i}")


def _random_repo(rnd: random.Random, root: Path) -> None:
    names = list("abcdefg")
    lines = []
    for _ in range(rnd.randint(0, 9)):
        n, cat = (
            rnd.choice(names),
            rnd.choice(["missing_dep", "install_failed", "generation_failed"]),
        )
        blockers = rnd.sample(names, rnd.randint(0, 2))
        if rnd.random() < 0.3:  # a per-recipe line
            line = {"schema_version": 1, "recipe": n, "platform": "darwin-arm64", "exit_code": 8}
            lines.append(line | {"category": cat, "blocked_by": blockers or None, "timestamp": "x"})
            continue
        item = {"package_id": f"{rnd.choice(['homebrew', 'crates.io'])}:{n}", "category": cat}
        item |= {"message": "", "timestamp": "2026-02-01T00:00:00Z"}
        if blockers:
            item["blocked_by"] = blockers
        env = {"schema_version": 1, "ecosystem": "homebrew", "environment": "e"}
        lines.append(env | {"updated_at": "2026-02-01T00-00-00Z", "failures": [item]})
    (root / "data" / "failures").mkdir(parents=True)
    (root / "data" / "queues").mkdir()
    text = "".join(json.dumps(x) + "\n" for x in lines)
    (root / "data" / "failures" / "homebrew-2026-02-01T00-00-00Z.jsonl").write_text(text)
    entries = []
    for n in rnd.sample(names, rnd.randint(1, len(names))):
        status = rnd.choice(["pending", "failed", "blocked", "success", "excluded"])
        retry = rnd.choice([None, "2099-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
        entries.append(
            {
                "name": n,
                "source": f"homebrew:{n}",
                "priority": rnd.randint(1, 3),
                "status": status,
                "confidence": "auto",
                "disambiguated_at": None,
                "failure_count": rnd.randint(0, 3),
                "next_retry_at": retry if status == "failed" else None,
            }
        )
    doc = {"schema_version": 1, "updated_at": "2026-03-01T00:00:00Z", "entries": entries}
    (root / tm.QUEUE).write_text(codec.dumps_queue(doc))


@needs_binary
def test_the_model_is_tsukus_queue_maintain_on_generated_cases(tmp_path):
    rnd = random.Random(26)
    for i in range(40):
        root = tmp_path / f"case{i}"
        _random_repo(rnd, root)
        _compare(root, tmp_path / f"cmp{i}")


def _derive(root: Path, stems: set[str]) -> dict[str, tuple[str, str]]:
    """Step 0003's rules (migrate's code) on ``root``'s queue; the changes, written."""
    from tests.helpers import records

    rows = [
        {**r, "blocked_by": r.get("blocked_by"), "line": r["line"]}
        for r in records(root)
        if r["scope"] == "package" or r.get("category")
    ]
    by_name = name_records(rows, "f")
    doc = json.loads((root / tm.QUEUE).read_text())
    res = Resolved.of(doc["entries"], stems, set())
    out = {}
    for e in doc["entries"]:
        d = decide(e["status"], e["failure_count"], by_name.get(e["name"]), res)
        if d.status != e["status"]:
            out[e["source"]] = (e["status"], d.status)
            e["status"] = d.status
    (root / tm.QUEUE).write_text(codec.dumps_queue(doc))
    return out


def test_step_0003s_rules_are_a_fixed_point_of_the_model_on_generated_cases(tmp_path):
    """For random queues and records (and recipes on disk): after migrate's rules, tsuku's
    (reconcile, then queue-maintain) change no status migrate set but to success
    (reconcile's: a recipe landed), and migrate's rules then have nothing to change."""
    rnd = random.Random(2026)
    now = datetime(2026, 3, 4, tzinfo=UTC)
    for i in range(300):
        root = tmp_path / f"case{i}"
        _random_repo(rnd, root)
        stems = set(rnd.sample(list("abcdefg"), rnd.randint(0, 2)))
        for n in stems:
            (root / "recipes" / n).mkdir(parents=True)
            (root / "recipes" / n / f"{n}.toml").write_text("")
        mine = _derive(root, stems)
        tm.reconcile(root)
        tm.queue_maintain(root, now)
        after = tm.statuses(root)
        undone = {s: v for s, v in mine.items() if after[s] not in (v[1], "success")}
        assert undone == {}, (i, undone)
        assert _derive(root, stems) == {}, i
        shutil.rmtree(root)
