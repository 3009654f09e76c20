"""Spares: a file one step of a run replaced is rewritten in place by the next step that
stages the same file (engine ``_commit_stages``/``_stage``), never while another name
links to it, and nothing of it is left after the run, whatever stops it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from migrate import engine
from migrate.check import check_repo
from migrate.errors import RepoError, UsageError
from migrate.ledger import FileEntry, Ledger
from migrate.repo import DataRepo
from tests.conftest import copy_repo
from tests.helpers import data_only, snapshot, up_stopped_at_the_third_rename

pytestmark = pytest.mark.usefixtures("frozen_clock")


def _leftovers(root) -> list[str]:
    return sorted(p.name for p in root.rglob(".*") if "migrate-s" in p.name)


def _hard_links_work(tmp_path) -> bool:
    a = tmp_path / "link-probe"
    a.write_bytes(b"x")
    try:
        os.link(a, tmp_path / "link-probe-2")
    except OSError:
        return False
    return True


def _leases_work(tmp_path) -> bool:
    probe = tmp_path / "lease-probe"
    probe.write_bytes(b"x")
    fd = os.open(probe, os.O_RDWR)
    try:
        return engine._alone(fd)
    finally:
        os.close(fd)


@pytest.fixture
def links(tmp_path):
    if not _hard_links_work(tmp_path):
        pytest.skip("this file system has no hard links: every staged file is new")


@pytest.fixture
def reuse(links, tmp_path):
    """Tests that a spare *is* rewritten need what proves nothing else sees it."""
    if not _leases_work(tmp_path):
        pytest.skip("no write leases here (not Linux, or disabled): spares are never rewritten")


@pytest.fixture
def spares_on(links, monkeypatch):
    """Fixture files are small; spares are kept only for big ones (``engine.BIG``)."""
    monkeypatch.setattr(engine, "BIG", 1)


def _changed_by_up(where, src) -> list[str]:
    """The files step 0002 changes in a full `up` of a copy of ``src``."""
    copy = copy_repo(src, where)
    engine.up(DataRepo(copy))
    return _changed_by(copy, "0002")


def _changed_by(root, step_id: str) -> list[str]:
    ledger = Ledger.load(DataRepo(root))
    entry = next(e for e in ledger.steps if e.id == step_id)
    return [fe.path for fe in ledger.files(entry) if fe.before != fe.after]


def test_step_0002_rewrites_the_files_0001_replaced_and_leaves_no_spare(
    fixture_repo, spares_on, reuse
):
    root = fixture_repo("sample")
    before = snapshot(root)
    inode = {p: os.stat(root / p).st_ino for p in before if p.startswith("data/failures/")}
    engine.up(DataRepo(root))
    rewritten = _changed_by(root, "0002")
    assert rewritten  # the sample has blockers to backfill
    for rel in rewritten:  # 0002's new bytes went over the original file, 0001's spare
        assert os.stat(root / rel).st_ino == inode[rel]
    assert _leftovers(root) == []
    assert check_repo(DataRepo(root)).ok
    engine.down(DataRepo(root), "base")  # down's steps reuse spares the same way
    assert _leftovers(root) == []
    assert snapshot(root) == before


def test_a_hard_link_elsewhere_keeps_the_original_bytes(fixture_repo, tmp_path, spares_on):
    """A backup made with `cp -al` (or any second name) shares the file's inode: that
    inode is never rewritten, and the run gives the same bytes as without the link."""
    root = fixture_repo("sample")
    reference = copy_repo(root, tmp_path / "ref")
    engine.up(DataRepo(reference))
    originals = {}
    for p in sorted((root / "data" / "failures").glob("*.jsonl")):
        originals[p.name] = p.read_bytes()
        os.link(p, tmp_path / f"backup-{p.name}")
    engine.up(DataRepo(root))
    for name, data in originals.items():
        assert (tmp_path / f"backup-{name}").read_bytes() == data
    assert {k: v for k, v in snapshot(root).items() if not k.startswith("data/.migrate")} == {
        k: v for k, v in snapshot(reference).items() if not k.startswith("data/.migrate")
    }
    assert _leftovers(root) == []


def test_stage_never_writes_into_a_spare_with_another_name(fixture_repo, tmp_path, spares_on):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    rel = "data/failures/homebrew.jsonl"
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"keep me\n")
    os.link(outside, engine._spare_path(repo, rel))  # a spare that is also `outside`
    engine._stage(repo, rel, b"new bytes\n")
    assert outside.read_bytes() == b"keep me\n"
    stage = engine._stage_path(repo, rel)
    assert stage.read_bytes() == b"new bytes\n"
    assert os.stat(stage).st_ino != os.stat(outside).st_ino
    assert not engine._spare_path(repo, rel).exists()


def test_stage_rewrites_a_longer_spare_to_exactly_the_new_bytes(fixture_repo, spares_on, reuse):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    rel = "data/failures/homebrew.jsonl"
    spare = engine._spare_path(repo, rel)
    spare.write_bytes(b"x" * 10_000)
    inode = spare.stat().st_ino
    engine._stage(repo, rel, b"short\n")
    assert engine._stage_path(repo, rel).read_bytes() == b"short\n"
    assert engine._stage_path(repo, rel).stat().st_ino == inode  # rewritten, not new


def test_killed_between_the_link_and_the_rename_resumes_exactly(
    fixture_repo, tmp_path, monkeypatch, spares_on
):
    """The one instant a spare and its file are the same inode: step 0001 stopped after
    linking the third file's spare, before renaming its staged copy over it. Finishing
    the run (or undoing it) must not write into that inode through the spare."""
    root = fixture_repo("sample")
    before = snapshot(root)
    reference = copy_repo(root, tmp_path / "ref")
    engine.up(DataRepo(reference))
    up_stopped_at_the_third_rename(root, monkeypatch)
    third = sorted((root / "data" / "failures").glob(f".*{engine.STAGE_SUFFIX}"))[0]
    target = third.parent / third.name[1 : -len(engine.STAGE_SUFFIX)]
    assert os.stat(target).st_nlink == 1  # the failed run dropped its spares
    twin = copy_repo(root, tmp_path / "twin")  # the same state, to undo instead
    spare = engine._spare_path(DataRepo(root), f"data/failures/{target.name}")
    os.link(target, spare)  # as a kill would have left it: the spare *is* the file
    engine.up(DataRepo(root))
    assert {k: v for k, v in snapshot(root).items() if not k.startswith("data/.migrate")} == {
        k: v for k, v in snapshot(reference).items() if not k.startswith("data/.migrate")
    }
    assert _leftovers(root) == []
    spare = engine._spare_path(DataRepo(twin), f"data/failures/{target.name}")
    os.link(twin / "data" / "failures" / target.name, spare)
    engine.down(DataRepo(twin), "base")
    assert snapshot(twin) == before
    assert _leftovers(twin) == []


def test_small_files_get_new_inodes_and_no_spare(fixture_repo, links, monkeypatch):
    """Below ``engine.BIG`` a spare would cost more syscalls than the pages it saves."""
    root = fixture_repo("sample")
    inode = {p.name: p.stat().st_ino for p in (root / "data" / "failures").glob("*.jsonl")}
    made = []
    real_link = os.link

    def link(src, dst, *a, **k):
        made.append(str(dst))
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr("migrate.engine.os.link", link)
    engine.up(DataRepo(root))
    assert made and not [p for p in made if p.endswith(engine.SPARE_SUFFIX)]
    for rel in _changed_by(root, "0002"):
        assert os.stat(root / rel).st_ino != inode[rel.rsplit("/", 1)[1]]


def test_no_spare_is_kept_of_a_symlink_or_its_target(fixture_repo, tmp_path, spares_on):
    """A spare is a second name of a regular file only: a file that is a symlink (which
    ``up`` refuses in its preflight; here the engine is called directly) gets none, so no
    later step can rewrite what it points at."""
    root = fixture_repo("sample")
    repo = DataRepo(root)
    rel = "data/failures/linked.jsonl"
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"keep me\n")
    (root / rel).symlink_to(outside)
    engine._stage(repo, rel, b"new\n")
    made: list = []
    engine._commit_stages(repo, [FileEntry(rel, "x", "y")], "after", None, spares=made)
    assert made == [] and not engine._spare_path(repo, rel).exists()
    assert outside.read_bytes() == b"keep me\n"
    assert (root / rel).read_bytes() == b"new\n" and not (root / rel).is_symlink()


def test_a_file_open_elsewhere_is_never_rewritten(fixture_repo, tmp_path, spares_on):
    """A process that opened a data file before the run (a viewer, `tail -f`, an editor)
    keeps reading the bytes it opened: the inode it holds is not reused."""
    root = fixture_repo("sample")
    reference = copy_repo(root, tmp_path / "ref")
    engine.up(DataRepo(reference))
    held = {}
    for p in sorted((root / "data" / "failures").glob("*.jsonl")):
        held[p.name] = (open(p, "rb"), p.read_bytes())  # noqa: SIM115 - closed below
    try:
        engine.up(DataRepo(root))
        for fh, data in held.values():
            fh.seek(0)
            assert fh.read() == data
    finally:
        for fh, _ in held.values():
            fh.close()
    assert data_only(snapshot(root)) == data_only(snapshot(reference))
    assert _leftovers(root) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file another owner")
def test_a_spare_owned_by_someone_else_is_not_rewritten(fixture_repo, spares_on):
    """A new file belongs to whoever runs migrate; a spare of another owner would keep
    that owner, so it is not reused: who owns a result never depends on its size."""
    root = fixture_repo("sample")
    repo = DataRepo(root)
    rel = "data/failures/homebrew.jsonl"
    spare = engine._spare_path(repo, rel)
    spare.write_bytes(b"old\n")
    os.chown(spare, 4242, 4242)
    engine._stage(repo, rel, b"new\n")
    st = engine._stage_path(repo, rel).stat()
    assert (st.st_uid, st.st_gid) == (0, os.getegid())  # a reused spare keeps 4242
    assert engine._stage_path(repo, rel).read_bytes() == b"new\n"
    assert not spare.exists()


@pytest.mark.parametrize("big", [False, True], ids=["new files", "spares"])
def test_files_keep_their_permission_bits(fixture_repo, monkeypatch, links, big):
    """Every rewritten file keeps the mode it had (as `migrate ingest` does), whether the
    new bytes went into a new file or over a spare."""
    root = fixture_repo("sample")
    if big:
        monkeypatch.setattr(engine, "BIG", 1)
    files = sorted((root / "data" / "failures").glob("*.jsonl"))
    modes = {}
    for i, p in enumerate(files):
        modes[p.name] = (0o600, 0o640, 0o664, 0o644)[i % 4]
        p.chmod(modes[p.name])
    engine.up(DataRepo(root))
    changed = _changed_by(root, "0002")
    assert changed
    for p in files:
        assert p.stat().st_mode & 0o7777 == modes[p.name], p.name
    engine.down(DataRepo(root), "base")
    for p in files:
        assert p.stat().st_mode & 0o7777 == modes[p.name], p.name


def test_a_step_drops_each_spare_it_does_not_take_when_done_with_the_file(
    fixture_repo, monkeypatch, spares_on
):
    """A spare holds the space of a file step 0001 replaced; a file step 0002 leaves as it
    is (or writes small) gives its spare back as soon as 0002 is done with it, not at the
    end of the run."""
    root = fixture_repo("sample")
    repo = DataRepo(root)
    real = engine._up_file
    seen: list[str] = []
    late: list[str] = []

    def watch(step, ctx, repo_, rel, **kw):
        if step.id == "0002":
            late.extend(r for r in seen if engine._spare_path(repo, r).exists())
            seen.append(rel)
        return real(step, ctx, repo_, rel, **kw)

    monkeypatch.setattr(engine, "_up_file", watch)
    engine.up(repo)
    assert len(seen) > len(_changed_by(root, "0002"))  # some files 0002 left unchanged
    assert late == []
    assert _leftovers(root) == []


def test_a_resumed_run_that_then_fails_leaves_no_spare(fixture_repo, monkeypatch, spares_on):
    """Spares of a killed run are dropped by the next run, before anything else, whether
    it finishes the interrupted step and goes on or stops at a bad target."""
    root = fixture_repo("sample")
    up_stopped_at_the_third_rename(root, monkeypatch)
    failures = sorted((root / "data" / "failures").glob("*.jsonl"))
    for p in failures[:3]:  # as a SIGKILL inside the commit would leave them
        os.link(p, engine._spare_path(DataRepo(root), f"data/failures/{p.name}"))
    with pytest.raises(UsageError, match="unknown step.*interrupted step 0001 was finished"):
        engine.up(DataRepo(root), "0009")
    assert _leftovers(root) == []
    assert engine.status(DataRepo(root))["current"] == "0001"


def test_a_reused_spare_takes_the_mode_of_the_file_it_replaces(fixture_repo, spares_on, reuse):
    root = fixture_repo("sample")
    repo = DataRepo(root)
    rel = "data/failures/homebrew.jsonl"
    (root / rel).chmod(0o640)
    spare = engine._spare_path(repo, rel)
    spare.write_bytes(b"old\n")
    spare.chmod(0o600)
    inode = spare.stat().st_ino
    engine._stage(repo, rel, b"new\n")
    st = engine._stage_path(repo, rel).stat()
    assert (st.st_ino, st.st_mode & 0o7777) == (inode, 0o640)


def test_down_drops_each_spare_it_does_not_take_and_leaves_none_when_it_fails(
    fixture_repo, monkeypatch, spares_on
):
    """`down --to base` keeps the files it reverts through 0002 as spares for 0001's
    revert, which drops each one it does not take when done with the file; a revert that
    fails part-way leaves none either."""
    root = fixture_repo("sample")
    # a file already at v2 at base, with a blocker to backfill: 0001 leaves it as it is,
    # 0002 rewrites it, so 0002's revert keeps a spare of it that 0001's revert never takes
    scratch = copy_repo(root, root.parent / "scratch")
    engine.up(DataRepo(scratch), "0001")
    rel = next(r for r in _changed_by_up(root.parent / "probe", root) if "homebrew-" in r)
    name = rel.rsplit("/", 1)[1].replace("2026-", "2027-")
    (root / "data" / "failures" / name).write_bytes((scratch / rel).read_bytes())
    engine.up(DataRepo(root))
    assert f"data/failures/{name}" in _changed_by(root, "0002")
    assert f"data/failures/{name}" not in _changed_by(root, "0001")
    repo = DataRepo(root)
    real = engine._down_file
    seen: list[str] = []
    late: list[str] = []

    def watch(step, entry, fe, repo_, rel, **kw):
        if step.id == "0001":
            late.extend(r for r in seen if engine._spare_path(repo, r).exists())
            seen.append(rel)
        return real(step, entry, fe, repo_, rel, **kw)

    monkeypatch.setattr(engine, "_down_file", watch)
    twin = copy_repo(root, root.parent / "twin")
    engine.down(repo, "base")
    assert len(seen) > len(_changed_by(twin, "0002")) and late == []
    assert _leftovers(root) == []

    def broken(step, entry, fe, repo_, rel, **kw):  # 0001's revert stops at its 4th file
        if step.id == "0001":
            if len(seen) == 3:
                raise RepoError(f"{rel}: cannot read (Input/output error)")
            seen.append(rel)
        return real(step, entry, fe, repo_, rel, **kw)

    seen.clear()
    monkeypatch.setattr(engine, "_down_file", broken)
    with pytest.raises(RepoError, match="Input/output error"):
        engine.down(DataRepo(twin), "base")
    assert _leftovers(twin) == []
    assert engine.status(DataRepo(twin))["current"] == "0001"


@pytest.mark.skipif(engine._SETLEASE is None, reason="write leases are Linux's")
def test_an_opener_during_the_lease_check_does_not_end_the_run(tmp_path):
    """Another process opening the file while the lease is held makes the kernel signal
    the holder; by default that signal (SIGIO) ends a process. The run must go on, and
    not rewrite a file someone has just opened."""
    probe = tmp_path / "probe"
    probe.write_bytes(b"x" * 4096)
    script = f"""
import fcntl, os, subprocess, sys, time
from migrate import engine
real = fcntl.fcntl
def fcntl_with_an_opener(fd, cmd, arg=0):
    out = real(fd, cmd, arg)
    if cmd == engine._SETLEASE and arg == fcntl.F_WRLCK:  # held: someone opens the file
        subprocess.Popen([sys.executable, "-c", "open({str(probe)!r}).close()"])
        time.sleep(1.0)  # the opener waits for the lease; the kernel signals us
    return out
fcntl.fcntl = fcntl_with_an_opener
fd = os.open({str(probe)!r}, os.O_RDWR)
print("alone" if engine._alone(fd) else "not alone")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout.strip()) == (0, "not alone"), proc.stderr


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_the_mode_does_not_depend_on_the_umask(fixture_repo, umask):
    """A new staged file takes the target's mode whatever the umask (or a folder's default
    ACL) would give it, as a reused spare does."""
    root = fixture_repo("sample")
    files = sorted((root / "data" / "failures").glob("*.jsonl"))
    for p in files:
        p.chmod(0o644)
    old = os.umask(umask)
    try:
        engine.up(DataRepo(root))
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o7777 for p in files} == {0o644}
