"""``migrate demo``: run the tool on a temporary copy of the bundled sample repo."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from migrate.errors import RepoError

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample"


def copy_sample(dest: Path) -> Path:
    if not (SAMPLE / "data").is_dir():
        raise RepoError(
            f"bundled sample not found at {SAMPLE}",
            hint="install from a checkout: pip install -e '.[test]'",
        )
    target = dest / "sample"
    shutil.copytree(SAMPLE, target)
    return target


def run_demo(keep: bool = False, out: TextIO | None = None) -> int:
    from migrate.check import check_repo, format_text
    from migrate.repo import DataRepo

    tmp = Path(tempfile.mkdtemp(prefix="migrate-demo-"))
    try:
        root = copy_sample(tmp)
        print(f"sample data repo copied to {root}", file=out)
        repo = DataRepo(root)
        report = check_repo(repo)
        print("\n$ migrate check", file=out)
        print(format_text(report), file=out)
        return 0 if report.ok else 1
    finally:
        if keep:
            print(f"\nkept: {tmp}", file=out)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
