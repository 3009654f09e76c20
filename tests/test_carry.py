"""What a step hands the next step of the same run (``UpResult.carry``) equals what that
step would read from the files, and is used only for the very bytes it describes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from migrate import codec, engine
from migrate.failures_index import latest_package_failures
from migrate.queues import queue_ids
from migrate.repo import DataRepo, sha256
from migrate.status_rules import Latest
from migrate.steps import STEPS
from migrate.steps.s0003_queue_status import QueueStatus
from tests.conftest import ROOT
from tests.test_failures_index import _line


def _run_capturing_0003(repo: DataRepo, monkeypatch) -> list[tuple[dict, object]]:
    """`up` to head, keeping step 0003's options and the context it built from them."""
    seen = []
    prepare = QueueStatus.prepare

    def spy(self, repo_, options):
        ctx = prepare(self, repo_, options)
        seen.append((options, ctx))
        return ctx

    monkeypatch.setattr(QueueStatus, "prepare", spy)
    engine.up(repo)
    return seen


def _check_carry_agrees_with_a_scan(repo: DataRepo, monkeypatch) -> int:
    [(options, ctx)] = _run_capturing_0003(repo, monkeypatch)
    carried = options["_carry"]
    assert set(carried) == {ff.rel for ff in repo.failure_files()}  # every file, both steps
    for rel, (digest, _) in carried.items():
        assert digest == sha256(repo.read_bytes(rel))  # describes the bytes on disk
    wanted, _ = queue_ids(repo)
    scanned = latest_package_failures(repo, only=set(wanted))  # no carry, no checksums
    assert ctx.latest == scanned
    # each package is kept in one file only: memory follows the queue, not the records
    assert sum(len(latest) for _, (_, latest) in carried.values()) == len(scanned)
    return len(scanned)


def test_step_0003_gets_from_the_carry_what_a_scan_of_the_files_reads(fixture_repo, monkeypatch):
    packages = _check_carry_agrees_with_a_scan(DataRepo(fixture_repo("anomalies")), monkeypatch)
    assert packages  # the queue's packages have failure records: the comparison bites


def test_the_same_on_the_real_corpus(corpus_repo, monkeypatch):
    assert _check_carry_agrees_with_a_scan(DataRepo(corpus_repo), monkeypatch) > 50


def test_a_carry_counts_only_for_a_file_that_still_has_its_checksum(fixture_repo):
    repo = DataRepo(fixture_repo("anomalies"))
    engine.up(repo)
    wanted, _ = queue_ids(repo)
    scanned = latest_package_failures(repo, only=set(wanted))
    rels = [ff.rel for ff in repo.failure_files()]
    pid = next(iter(scanned))
    fake = {pid: ("99999999999999999999999", "2099-01-01T00:00:00Z", "x", ["y"], 7)}
    right = {rel: (sha256(repo.read_bytes(rel)), {}) for rel in rels}
    right[rels[0]] = (right[rels[0]][0], fake)
    found = latest_package_failures(repo, only=set(wanted), carried=right)
    assert found == {pid: Latest(*fake[pid][:4], f"{rels[0]}:7")}  # the accounts, not a scan
    wrong = {**right, rels[-1]: ("0" * 64, {})}  # one file changed since: every file is read
    assert latest_package_failures(repo, only=set(wanted), carried=wrong) == scanned
    partial = {rels[0]: right[rels[0]]}  # accounts of some files only: every file is read
    assert latest_package_failures(repo, only=set(wanted), carried=partial) == scanned


def test_step_0002_takes_the_carry_only_for_the_bytes_it_describes(fixture_repo):
    repo = DataRepo(fixture_repo("anomalies"))
    engine.up(repo, "0001")
    s0002 = next(s for s in STEPS if s.id == "0002")
    ctx = s0002.prepare(repo, {})
    rel = next(ff.rel for ff in repo.failure_files())
    carry = (("fp", {}), None)  # step 0001's: (FileLatest carry, SiblingFacts carry)
    digest = sha256(repo.read_bytes(rel))
    kw = {"stage": False, "diff": False}
    good = engine._up_file(s0002, ctx, repo, rel, carried={rel: (digest, carry)}, **kw)
    stale = engine._up_file(s0002, ctx, repo, rel, carried={rel: ("0" * 64, carry)}, **kw)
    assert good.carry is not None and good.carry[1][0] == "fp"
    assert stale.carry is None  # handed nothing, it hands nothing on


def test_file_latest_breaks_ties_and_orders_times_as_the_scan_does(tmp_path):
    from migrate import codec
    from migrate.failures_index import FileLatest
    from tests.test_failures_index import _slow, tie_lines

    lines = tie_lines()
    (tmp_path / "data" / "failures").mkdir(parents=True)
    rel = "data/failures/homebrew.jsonl"
    (tmp_path / rel).write_bytes(b"\n".join(lines) + b"\n")
    latest = FileLatest(frozenset({"homebrew:a", "homebrew:b"}), "fp")
    for lineno, raw in enumerate(lines, start=1):
        latest.add_all(lineno, [codec.loads(raw)])
    fp, found = latest.carry()
    slow = _slow(DataRepo(tmp_path), rel, {b"homebrew:a", b"homebrew:b"})[0]
    assert fp == "fp" and set(found) == set(slow) == {"homebrew:a", "homebrew:b"}
    for pid, (key, timestamp, category, blocked, lineno) in found.items():
        assert Latest(key, timestamp, category, blocked, f"{rel}:{lineno}") == slow[pid]
    assert found["homebrew:b"][4] == 4


def _check_sibling_facts_agree_with_the_passes(repo: DataRepo, monkeypatch) -> int:
    from migrate.steps.s0002_backfill_blocked_by import BackfillBlockedBy

    seen = []
    prepare = BackfillBlockedBy.prepare

    def spy(self, repo_, options):
        ctx = prepare(self, repo_, options)
        slow = prepare(self, repo_, {k: v for k, v in options.items() if k != "_carry"})
        seen.append((ctx, slow))
        return ctx

    monkeypatch.setattr(BackfillBlockedBy, "prepare", spy)
    engine.up(repo)
    [(ctx, slow)] = seen
    assert ctx.from_carry and not slow.from_carry  # the carry was taken, and it bites
    assert ctx.package_names == slow.package_names
    return sum(len(v) for v in slow.package_names.values())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated repo (scripts/gen_corpus.py): exit-8 platform lines whose package has
    earlier records naming blockers, few large files and a queue, as in the benchmark."""
    root = tmp_path_factory.mktemp("gen") / "repo"
    cmd = [sys.executable, str(ROOT / "scripts" / "gen_corpus.py"), str(root)]
    subprocess.run([*cmd, "--records", "6000", "--files", "6"], check=True, capture_output=True)
    return root


def test_step_0002_gets_from_the_carry_what_its_passes_read(generated, tmp_path, monkeypatch):
    from tests.conftest import copy_repo

    repo = DataRepo(copy_repo(generated, tmp_path))
    assert _check_sibling_facts_agree_with_the_passes(repo, monkeypatch) > 20


@pytest.mark.parametrize("name", ["sample", "anomalies"])
def test_the_same_on_fixtures(fixture_repo, monkeypatch, name):
    _check_sibling_facts_agree_with_the_passes(DataRepo(fixture_repo(name)), monkeypatch)


def test_step_0003_carry_on_a_generated_repo(generated, tmp_path, monkeypatch):
    from tests.conftest import copy_repo

    repo = DataRepo(copy_repo(generated, tmp_path))
    assert _check_carry_agrees_with_a_scan(repo, monkeypatch) > 100


def test_sibling_facts_on_the_real_corpus(corpus_repo, monkeypatch):
    _check_sibling_facts_agree_with_the_passes(DataRepo(corpus_repo), monkeypatch)


def test_step_0002_reads_bytes_step_0001_wrote_as_decoding_them_would(generated, tmp_path):
    """Given a carry (bytes step 0001 wrote in this run), step 0002 tells true not-founds
    from their bytes without decoding them: same bytes out, same counts, same patch."""
    from tests.conftest import copy_repo

    repo = DataRepo(copy_repo(generated, tmp_path))
    engine.up(repo, "0001")
    s0002 = next(s for s in STEPS if s.id == "0002")
    ctx = s0002.prepare(repo, {})
    skipped = 0
    for ff in repo.failure_files():
        data = repo.read_bytes(ff.rel)
        fast, slow = s0002.up(ff.rel, data, ctx, (None, None)), s0002.up(ff.rel, data, ctx)
        assert (fast.data, fast.counts, fast.patch, fast.exact, fast.notes) == (
            slow.data,
            slow.counts,
            slow.patch,
            slow.exact,
            slow.notes,
        )
        skipped += fast.counts["true not-found, untouched"]
    assert skipped > 100


def test_a_true_not_found_is_told_from_the_message_field_alone():
    from migrate import codec
    from migrate.steps.s0002_backfill_blocked_by import _untouched_not_found
    from tests.test_failures_index import _line

    nf = "package 'foo' not found in homebrew"
    assert _untouched_not_found(_line("homebrew:foo", "2026-02-07T03:03:36Z", message=nf))
    # counted as unknown blockers too: decoded
    assert not _untouched_not_found(
        _line("homebrew:foo", "2026-02-07T03:03:36Z", "missing_dep", message=nf)
    )
    rec = codec.loads(_line("homebrew:foo", "2026-02-07T03:03:36Z", message="boom"))
    rec["evidence"] = [{"source": "log", "names": [], "detail": nf, "file": None, "line": None}]
    assert not _untouched_not_found(codec.dumps_bytes(rec))  # the phrase outside the message
    rec = codec.loads(_line("homebrew:foo", "2026-02-07T03:03:36Z", message=nf))
    rec["scope"], rec["exit_code"] = "platform", 8
    assert not _untouched_not_found(codec.dumps_bytes(rec))
    rec["scope"] = "package"
    assert not _untouched_not_found(codec.dumps_bytes(rec))  # exit code 8
    rec["exit_code"] = 1
    assert _untouched_not_found(codec.dumps_bytes(rec))


def test_a_file_changed_between_two_steps_of_a_run_is_refused_not_trusted(generated, tmp_path):
    """Step 0002's sibling facts came from step 0001's account of the files: a file another
    program rewrites between the two steps is refused (nothing of 0002 written), and the
    next `up` reads the files themselves."""
    from migrate.errors import BadInputError
    from tests.conftest import copy_repo

    root = copy_repo(generated, tmp_path)
    repo = DataRepo(root)
    rels = [ff.rel for ff in repo.failure_files()]
    fired = []

    def meddle(i):  # after step 0001's last rename: another writer adds a blank line
        if i == len(rels) - 1 and not fired:
            fired.append(i)
            (root / rels[0]).write_bytes((root / rels[0]).read_bytes() + b"\n")

    with pytest.raises(BadInputError) as err:
        engine.up(repo, after_each=meddle)
    assert f"{rels[0]}: changed since step 0001 wrote it in this run" in "\n".join(
        err.value.problems
    )
    assert engine.status(repo)["current"] == "0001"
    assert not list(root.rglob("*.migrate-stage"))
    engine.up(repo)
    assert engine.status(repo)["pending"] == []


# A v2 line already in a file is passed through by step 0001 re-encoded but in the key order
# its writer chose, maybe without the keys the model fills by default: not the layout the
# byte scans of later steps rely on. Such a file gets no carry; a single `up` must then do
# what `up --to 0001` followed by `up` does (found by review).
_REC = codec.loads(_line("homebrew:zzz", "2026-03-09T00:00:00Z"))  # canonical, message "m"


def _single_and_split_runs(tmp_path, rec: dict) -> list:
    import json

    from migrate.errors import BadInputError
    from tests.conftest import FIXTURES, copy_repo

    out = []
    for plan in (["head"], ["0001", "head"]):
        root = copy_repo(FIXTURES / "sample", tmp_path / "-".join(plan))
        new = root / "data/failures/homebrew-2026-03-10T00-00-00Z.jsonl"
        new.write_text(json.dumps(rec, separators=(",", ":")) + "\n")
        try:
            for target in plan:
                engine.up(DataRepo(root), target)
            out.append(new.read_bytes())
        except BadInputError as exc:
            out.append("refused: " + exc.problems[0].split(": ", 1)[1])
    return out


def test_a_passed_through_line_in_another_key_order_is_read_not_scanned(tmp_path):
    keys = [k for k in _REC if k != "category_legacy"]
    keys.insert(keys.index("message") + 1, "category_legacy")  # the phrase after the message
    rec = {
        **_REC,
        "message": "Error: registry: recipe barlib not found in registry",
        "category_legacy": "package 'x' not found in homebrew",
    }
    single, split = _single_and_split_runs(tmp_path, {k: rec[k] for k in keys})
    assert single == split and b'"blocked_by":["barlib"]' in single


@pytest.mark.parametrize(
    "rec",
    [
        dict(sorted({**_REC, "message": "recipe barlib not found in registry"}.items())),
        {
            k: v
            for k, v in {**_REC, "message": "package 'zzz' not found in homebrew"}.items()
            if k not in ("category_legacy", "reclassified_from")
        },
    ],
    ids=["keys sorted", "defaults left out"],
)
def test_a_passed_through_line_is_refused_as_in_two_runs(tmp_path, rec):
    single, split = _single_and_split_runs(tmp_path, rec)
    assert single == split and str(split).startswith("refused")


def test_the_queue_cache_does_not_keep_validated_models(fixture_repo):
    from migrate import queues

    engine.up(DataRepo(fixture_repo("sample")))
    cached = [pq for _, _, pq in queues._CHECKED.values() if pq is not None]
    assert cached and all(pq.model is None for pq in cached)
