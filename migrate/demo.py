"""``migrate demo``: run the tool end to end on a temporary copy of the bundled sample repo.

check (v1) -> up (dry run, then for real) -> explain -> check (v2) -> down to base ->
byte comparison with the original.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TextIO

from migrate.errors import RepoError

SAMPLE = Path(__file__).resolve().parent / "sample"  # package data (fixtures/sample links here)


def copy_sample(dest: Path) -> Path:
    if not (SAMPLE / "data").is_dir():
        raise RepoError(
            f"bundled sample not found at {SAMPLE}",
            hint="reinstall migrate: its package data is missing",
        )
    target = dest / "sample"
    shutil.copytree(SAMPLE, target)
    return target


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "data").rglob("*"))
        if p.is_file()
    }


def run_demo(keep: bool = False, out: TextIO | None = None) -> int:
    def say(*lines: str) -> None:
        for line in lines:
            print(line, file=out)

    tmp = Path(tempfile.mkdtemp(prefix="migrate-demo-"))
    try:
        root = copy_sample(tmp)
        say(f"sample data repo copied to {root}")
        return _walk_through(root, say)
    finally:
        if keep:
            say(f"\nkept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _walk_through(root: Path, say) -> int:
    from migrate import engine
    from migrate.check import check_repo, format_text
    from migrate.store import Store

    repo = Store(root)
    original = _files(root)

    say("", "$ migrate check")
    report = check_repo(repo)
    say(format_text(report))
    if not report.ok:
        return 1

    say("", "$ migrate up --dry-run")
    dry = engine.up(repo, dry_run=True)
    say(*dry.plan.describe())
    for sr in dry.steps:
        say(f"  {sr.step.id}: would change {sr.changed_files} of {sr.files_read} files")

    say("", "$ migrate up")
    run = engine.up(repo)
    for sr in run.steps:
        say(f"  {sr.step.id} {sr.step.name}: {sr.changed_files} files changed")
        say(*(f"    {k}: {v}" for k, v in sorted(sr.totals.items())))
    say(f"  now at {engine.status(repo)['current']} in {run.seconds:.2f}s")

    _show_node(repo, root, say)

    say("", "$ migrate check")
    report = check_repo(repo)
    say(format_text(report))

    say("", "$ migrate down --to base")
    engine.down(repo, "base")
    same = _files(root) == original
    say(
        "  round trip: every file is byte-identical to the original"
        if same
        else "  round trip FAILED: files differ from the original"
    )
    return 0 if report.ok and same else 1


def _show_node(repo, root: Path, say) -> None:
    from migrate.explain import explain
    from migrate.explain import format_text as explain_text

    node = _first_record(root, "homebrew:node")
    if node:
        say(
            "",
            "homebrew:node's record in its envelope, now v2 (same line, message cut here):",
            "  " + json.dumps({**node, "message": node["message"][:60] + "..."}),
        )
    say("", "$ migrate explain homebrew:node")
    say(*(line[:160] for line in explain_text(explain(repo, "homebrew:node")).splitlines()))


def _first_record(root: Path, package_id: str) -> dict | None:
    """The first envelope item of ``package_id`` that step 0002 backfilled."""
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line) if line.strip() else {}
            for item in obj.get("failures", []):
                if item["package_id"] == package_id and item.get("evidence"):
                    return item
    return None
