#!/usr/bin/env python3
"""What the ledger costs tsuku's repo: committed bytes after a first `up`, per catch-up,
and the time of a no-op `up` as runs accumulate.

1. first `up` of a copy of REPO: the bytes git would commit under ``data/.migrate/``
   (``git add``, so the tool's own ignore file counts), gzipped as one stream, against all
   of ``data/failures/`` gzipped the same way (target: at most 50 %);
2. a catch-up after one batch (six new v1 files, the queue saved by tsuku's struct): its
   committed bytes against 2 KB + 150 bytes per file it changed;
3. ``--runs N`` catch-ups of one new v1 file each, in process: a no-op `up` (its own
   process, median of 3) before and after them (target: within 20 %).

    python scripts/ledger_size.py ../shared/corpus/2026-03-02 --runs 1000
    python scripts/ledger_size.py /tmp/x10 --runs 0
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import compile_package, run  # noqa: E402
from gen_corpus import other_writers  # noqa: E402

MIGRATE = [sys.executable, "-m", "migrate"]


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=l", "-c", "user.email=l@example.org", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def gz(paths: list[Path]) -> int:
    return len(gzip.compress(b"".join(p.read_bytes() for p in sorted(paths)), 9))


def committed(repo: Path) -> list[Path]:
    """What `git add data` would commit under data/.migrate/ (the tool's ignore file read)."""
    git(repo, "add", "-A", "data")
    return [repo / p for p in git(repo, "ls-files", "data/.migrate").split()]


def noop_up(repo: Path) -> float:
    walls = [run([*MIGRATE, "up", "-q", "--repo", str(repo), "-j", "1"])[0] for _ in range(3)]
    return statistics.median(walls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--runs", type=int, default=1000)
    a = ap.parse_args()
    compile_package()
    tmp = Path(tempfile.mkdtemp(prefix="ledger-size-"))
    work, pristine = tmp / "work", tmp / "pristine"
    shutil.copytree(a.repo, pristine)
    shutil.copytree(a.repo, work)
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "before")
    failures = sorted((work / "data" / "failures").glob("*.jsonl"))
    data_gz = gz(failures)
    run([*MIGRATE, "up", "-q", "--repo", str(work)])
    ledger = committed(work)
    ledger_gz = gz(ledger)
    raw = sum(p.stat().st_size for p in ledger)
    print(f"{len(failures)} failure files: {data_gz:,} B gzipped as one stream")
    print(
        f"first up: ledger {raw:,} B in {len(ledger)} files, {ledger_gz:,} B gzipped ="
        f" {100 * ledger_gz / data_gz:.1f} % of the data (target <= 50 %)"
    )
    git(work, "commit", "-qm", "migrated")
    other_writers(work, pristine)
    run([*MIGRATE, "up", "-q", "--repo", str(work)])
    changed = [p for p in git(work, "status", "--porcelain", "data").splitlines()]
    new = [p for p in committed(work) if p not in ledger]
    n_data = sum(1 for line in changed if ".migrate" not in line)
    size = sum(p.stat().st_size for p in new)
    print(
        f"catch-up after one batch: {size:,} B committed in {len(new)} file(s), {n_data} data"
        f" files changed; target {2048 + 150 * n_data:,} B (2 KB + 150 B/file)"
    )
    git(work, "commit", "-qm", "catch-up")
    if a.runs:
        first = noop_up(work)
        sys.path.insert(0, str(HERE.parent))
        from migrate import engine
        from migrate.store import Store

        # a v1 envelope (from the pristine copy: the work tree's own are at v2 now)
        src = next(p for p in sorted((pristine / "data" / "failures").glob("homebrew-*")))
        for i in range(a.runs):
            day, hour = divmod(i, 24)  # (one run an hour)
            stamp = f"2099-{1 + day // 28:02d}-{1 + day % 28:02d}T{hour:02d}-00-00Z"
            shutil.copyfile(src, work / "data" / "failures" / f"homebrew-{stamp}.jsonl")
            assert engine.up(Store(work)).run_id, "a catch-up that wrote no run"
        after = noop_up(work)
        runs = len(list((work / "data" / ".migrate" / "runs").glob("*.jsonl")))
        print(
            f"no-op up: {first:.2f} s with the first runs, {after:.2f} s after {a.runs} more"
            f" catch-ups ({runs} run files): {100 * (after / first - 1):+.0f} % (target <= +20 %)"
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
