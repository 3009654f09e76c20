from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from freezegun import freeze_time

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpus"
SNAPSHOTS = ("2026-02-08", "2026-03-02")


def corpus_snapshot(name: str) -> Path:
    path = CORPUS / name
    if not (path / "data").is_dir():
        pytest.skip(f"real corpus not available at {path}")
    return path


def copy_repo(src: Path, dest: Path) -> Path:
    """Copy a data repo (fixture or corpus snapshot) to a writable temp folder."""
    target = dest / src.name
    shutil.copytree(src, target, symlinks=True)
    for p in [target, *target.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
    return target


@pytest.fixture
def frozen_clock():
    """Runs compared byte for byte must see the same clock (ledgers and queues record it)."""
    with freeze_time("2026-03-04 05:06:07"):
        yield


@pytest.fixture
def fixture_repo(tmp_path):
    """factory: fixture_repo("sample") -> writable copy of fixtures/sample."""

    def make(name: str) -> Path:
        return copy_repo(FIXTURES / name, tmp_path)

    return make


@pytest.fixture(params=SNAPSHOTS)
def corpus_repo(request, tmp_path):
    """A writable copy of one real corpus snapshot (skips cleanly without the corpus)."""
    return copy_repo(corpus_snapshot(request.param), tmp_path)
