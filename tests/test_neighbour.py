"""migrate beside tsuku's queue maintainer, as the pipeline runs them (design.md, "One
pipeline, one owner per value"): after every push, tsuku's `update-queue-status` workflow
(reconcile, then queue-maintain) saves the queue, and migrate's catch-up runs. They must
reach a fixed point: after `migrate up`, queue-maintain changes no status migrate set;
after queue-maintain's save, `migrate up` writes nothing; no status goes back and forth.

Each round, after a commit: up, the workflow, up, the workflow (tests/tsuku_model.py, which
tests/test_tsuku_model.py checks against tsuku's own binary; a second replay puts the
binary itself in the loop).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate import codec, engine
from migrate.check import check_repo
from migrate.store import Store
from tests import tsuku_model as tm
from tests.conftest import CORPUS, FIXTURES, copy_repo, corpus_snapshot

QM_BINARY = CORPUS.parent / "tools" / "tsuku" / "queue-maintain"


def tree(root: Path) -> dict[str, bytes]:
    """What a commit would hold of data/ (migrate's cache and scratch are git-ignored)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "data").rglob("*"))
        if p.is_file()
        and not p.relative_to(root / "data")
        .as_posix()
        .startswith((".migrate/cache/", ".migrate/tmp/"))
    }


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


class Loop:
    """Runs the rounds and keeps, per queue entry, who set which status when."""

    def __init__(self, root: Path, binary: bool = False):
        self.root, self.binary = root, binary
        self.history: dict[str, list[tuple[str, str]]] = {}
        self.rounds: list[dict] = []
        self.record("start")

    def record(self, actor: str) -> None:
        for src, status in tm.statuses(self.root).items():
            h = self.history.setdefault(src, [])
            if not h or h[-1][1] != status:
                h.append((actor, status))

    def up(self) -> list[str]:
        before = tree(self.root)
        engine.up(Store(self.root))
        self.record("migrate")
        return changed(before, tree(self.root))

    def workflow(self, now: datetime) -> list[str]:
        before = tree(self.root)
        tm.reconcile(self.root)
        if self.binary:
            subprocess.run([str(QM_BINARY)], cwd=self.root, capture_output=True, check=True)
        else:
            tm.queue_maintain(self.root, now)
        self.record("tsuku")
        report = check_repo(Store(self.root), at_head=True)
        assert report.ok, [str(p) for p in report.problems]  # CI green after every save
        return changed(before, tree(self.root))

    def round(self, name: str, now: datetime, new_failures: bool) -> dict:
        r = {"round": name, "new failures": new_failures}
        r["up"] = self.up()
        r["workflow"] = self.workflow(now)
        r["second up"] = self.up()
        r["workflow again"] = self.workflow(now)
        assert r["second up"] == [], r  # after tsuku's save: nothing to write
        self.rounds.append(r)
        return r

    def fights(self) -> dict[str, list]:
        """Entries where one side undid the other: a status migrate set changed by tsuku's
        rules (but to success: reconcile's, a recipe landed), or a status set back."""
        out = {}
        for src, h in self.history.items():
            for (a1, _), (a2, s2) in zip(h, h[1:], strict=False):
                if a1 == "migrate" and a2 == "tsuku" and s2 != "success":
                    out[src] = h
            for (a1, s1), (a2, _), (a3, s3) in zip(h, h[1:], h[2:], strict=False):
                if s1 == s3 and {a2, a3} == {"migrate", "tsuku"} and a1 != "start":
                    out[src] = h
        return out


def _replay_commits():
    return sorted(p for p in (CORPUS / "replay-2026-03-03").iterdir() if p.is_dir())


def _recipes_landed(commits) -> dict[str, list[str]]:
    """The recipes each batch commit added (the corpus holds data/ only): the names the
    next queue save by tsuku's reconcile job marks success, given to that batch."""
    prev = json.loads((CORPUS / "2026-03-02" / tm.QUEUE).read_text())
    out: dict[str, list[str]] = {}
    batch = None
    for c in commits:
        if (c / "data" / "failures").is_dir():
            batch = c.name
        q = c / tm.QUEUE
        if q.exists():
            new = json.loads(q.read_text())
            was = {e["source"]: e["status"] for e in prev["entries"]}
            out.setdefault(batch or c.name, []).extend(
                e["name"]
                for e in new["entries"]
                if e["status"] == "success" and was.get(e["source"]) != "success"
            )
            prev = new
    return out


def _add_recipes(root: Path, names: list[str]) -> None:
    for n in names:
        p = root / "recipes" / n[0] / f"{n}.toml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'[metadata]\nname = "{n}"\n')


def _replay(tmp_path: Path, binary: bool, commits=None) -> Loop:
    """The real replay onto 2026-03-02 migrated. A batch commit adds its failure files
    (and the recipes it added); a queue commit is tsuku's workflow, which the loop runs
    itself on the repo's queue (upstream's save was made without migrate: taking it
    whole would drop what migrate derived, as no save in a migrated pipeline does)."""
    root = copy_repo(corpus_snapshot("2026-03-02"), tmp_path / "replay")
    engine.up(Store(root))
    loop = Loop(root, binary)
    commits = commits or _replay_commits()
    landed = _recipes_landed(_replay_commits())
    for c in commits:
        now = datetime.fromisoformat((c / "commit.txt").read_text().split("\n")[1])
        failures = c / "data" / "failures"
        if failures.is_dir():
            shutil.copytree(failures, root / "data" / "failures", dirs_exist_ok=True)
        _add_recipes(root, landed.get(c.name, []))
        loop.round(c.name, now.astimezone(UTC), failures.is_dir())
    return loop


def test_the_real_replay_with_tsukus_queue_rules_in_the_loop_reaches_a_fixed_point(tmp_path):
    loop = _replay(tmp_path, binary=False)
    assert loop.fights() == {}
    for r in loop.rounds:  # only a batch gives migrate something to write
        assert bool(r["up"]) == r["new failures"], r
    assert any(r["workflow"] for r in loop.rounds)  # (tsuku's own decisions: its values)
    assert sum(len(h) > 2 for h in loop.history.values()) > 0  # (statuses did move)


@pytest.mark.skipif(not QM_BINARY.exists(), reason="tsuku's queue-maintain is not here")
def test_tsukus_own_queue_maintain_in_the_loop_agrees(tmp_path):
    """The same with tsuku's binary in the loop (its clock is the real one: backoffs end
    at once, so its own retries move more than the model's do), on the first half."""
    loop = _replay(tmp_path, binary=True, commits=_replay_commits()[:12])
    assert loop.fights() == {}
    assert all(r["second up"] == [] for r in loop.rounds)


def _queue_doc(root: Path) -> dict:
    return json.loads((root / tm.QUEUE).read_text())


def test_blockers_only_the_latest_record_names_land_and_nothing_flips(tmp_path):
    """homebrew:open-mpi: its latest record is blocked by pmix, an older one by gcc. Only
    pmix gets a recipe (its entry set to success). tsuku's requeue reads the union over
    history (gcc still unresolved): migrate keeps it blocked with it, and says that its
    own judgement (the latest record: pmix, resolved) differs. Rounds until quiet."""
    root = copy_repo(FIXTURES / "sample", tmp_path / "repo")
    older = {
        "schema_version": 1,
        "ecosystem": "homebrew",
        "environment": "linux-glibc-x86_64",
        "updated_at": "2026-02-20T00-00-00Z",
        "failures": [
            {
                "package_id": "homebrew:open-mpi",
                "category": "missing_dep",
                "blocked_by": ["gcc"],
                "message": "Error: registry: recipe gcc not found in registry",
                "timestamp": "2026-02-20T00:00:00Z",
            }
        ],
    }
    latest = {**older, "updated_at": "2026-03-03T06-49-17Z"}
    latest["failures"] = [
        {
            **older["failures"][0],
            "blocked_by": ["pmix"],
            "message": "Error: registry: recipe pmix not found in registry",
            "timestamp": "2026-03-03T06:49:17Z",
        }
    ]
    for line in (older, latest):
        name = f"homebrew-{line['updated_at']}.jsonl"
        (root / "data" / "failures" / name).write_text(codec.dumps_line(line) + "\n")
    doc = _queue_doc(root)
    template = doc["entries"][0]
    for name in ("open-mpi", "pmix", "gcc"):
        doc["entries"].append(
            {**template, "name": name, "source": f"homebrew:{name}", "status": "pending"}
        )
    doc["entries"][-3]["failure_count"] = 2  # (its two records, counted)
    (root / tm.QUEUE).write_text(codec.dumps_queue(doc))
    engine.up(Store(root))
    loop = Loop(root)
    now = datetime(2026, 3, 4, tzinfo=UTC)
    loop.round("open-mpi blocked", now, False)
    assert tm.statuses(root)["homebrew:open-mpi"] == "blocked"
    _add_recipes(root, ["pmix"])  # (reconcile marks pmix success)
    for i in range(4):  # rounds until quiet
        r = loop.round(f"quiet {i}", now, False)
    assert r["up"] == r["workflow"] == r["workflow again"] == []
    assert tm.statuses(root)["homebrew:open-mpi"] == "blocked"  # gcc: still unresolved
    assert loop.fights() == {}
    (f,) = [n for n in check_repo(Store(root)).notes if "homebrew:open-mpi" in n.reason]
    assert "judgement: not blocked" in f.reason and "older records" in f.field
    _add_recipes(root, ["gcc"])  # the last one lands: requeued, once, by both
    loop.round("gcc lands", now, False)
    assert tm.statuses(root)["homebrew:open-mpi"] == "pending"
    assert loop.fights() == {}


def test_a_bare_name_shared_by_two_ecosystems_is_a_finding_not_a_fight(tmp_path):
    """tsuku reads records by bare name: homebrew:numpy's missing_dep record blocks
    crates.io:numpy too. migrate decides as tsuku does (a fixed point), and `check`,
    `report` and `explain` say that its own judgement differs, naming the records."""
    root = copy_repo(FIXTURES / "sample", tmp_path / "repo")
    line = {
        "schema_version": 1,
        "ecosystem": "homebrew",
        "environment": "linux-glibc-x86_64",
        "updated_at": "2026-03-03T06-49-17Z",
        "failures": [
            {
                "package_id": "homebrew:numpy",
                "category": "missing_dep",
                "blocked_by": ["openblas"],
                "message": "",
                "timestamp": "2026-03-03T06:49:17Z",
            }
        ],
    }
    f = root / "data" / "failures" / "homebrew-2026-03-03T06-49-17Z.jsonl"
    f.write_text(codec.dumps_line(line) + "\n")
    doc = _queue_doc(root)
    doc["entries"].append(
        {**doc["entries"][0], "name": "numpy", "source": "crates.io:numpy", "status": "failed"}
    )
    (root / tm.QUEUE).write_text(codec.dumps_queue(doc))
    engine.up(Store(root))
    loop = Loop(root)
    loop.round("numpy", datetime(2026, 3, 4, tzinfo=UTC), False)
    assert tm.statuses(root)["crates.io:numpy"] == "blocked" and loop.fights() == {}
    (note,) = [n for n in check_repo(Store(root)).notes if "crates.io:numpy" in n.reason]
    assert "bare name shared" in note.field
    from migrate.explain import explain
    from migrate.report import build_report

    (q,) = explain(Store(root), "crates.io:numpy")["queues"]
    assert q["records_of_name"] == ["homebrew:numpy"] and q["judgement"]["status"] == "not blocked"
    findings = build_report(Store(root)).findings
    assert any(x["package_id"] == "crates.io:numpy" for x in findings)
