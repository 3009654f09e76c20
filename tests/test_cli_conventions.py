"""Command-line conventions (issue 20, first part): global options anywhere, the repo found
from any folder inside it, flags that do what they say or are errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from migrate.cli import build_parser, main
from migrate.layout import LOCK_FILE
from tests.helpers import snapshot


def test_global_options_go_before_or_after_the_command(fixture_repo, capsys):
    root = fixture_repo("sample")
    assert main(["--repo", str(root), "status"]) == 0
    before = capsys.readouterr().out
    assert main(["status", "--repo", str(root)]) == 0
    assert capsys.readouterr().out == before and "current: base" in before
    assert main(["-q", "--repo", str(root), "-j", "1", "check"]) == 0
    args = build_parser().parse_args(["--repo", "X", "up", "-j", "3"])
    assert (args.repo, args.jobs) == ("X", 3)
    args = build_parser().parse_args(["up", "--repo", "Y"])
    assert args.repo == "Y" and args.jobs == (os.cpu_count() or 1)  # one process per CPU


def test_the_repo_is_found_from_any_folder_inside_it(fixture_repo, monkeypatch, capsys):
    root = fixture_repo("sample")
    monkeypatch.chdir(root / "data" / "failures")
    assert main(["status"]) == 0
    assert "current: base" in capsys.readouterr().out
    monkeypatch.chdir(root.parent)
    assert main(["status"]) == 2
    assert "not a tsuku data repo" in capsys.readouterr().err


def test_diff_implies_a_dry_run(fixture_repo, capsys):
    root = fixture_repo("sample")
    before = snapshot(root)
    assert main(["up", "--repo", str(root), "--diff"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: ") and "+++ b/data/failures/" in out
    assert snapshot(root) == before


def test_a_missing_evidence_folder_is_a_usage_error_not_a_silent_skip(fixture_repo, capsys):
    root = fixture_repo("sample")
    before = snapshot(root)
    assert main(["up", "--repo", str(root), "--evidence", str(root / "typo")]) == 2
    assert "typo: no such file or folder" in capsys.readouterr().err
    assert snapshot(root) == before


def test_down_at_base_has_nothing_to_do(fixture_repo, capsys):
    root = fixture_repo("sample")
    assert main(["down", "--repo", str(root)]) == 0
    assert "nothing to do: at base" in capsys.readouterr().out


def test_a_lock_file_with_garbage_in_it_is_named_as_such(fixture_repo, capsys):
    root = fixture_repo("sample")
    Path(root / LOCK_FILE).parent.mkdir(parents=True)
    Path(root / LOCK_FILE).write_text("garbage")
    assert main(["up", "--repo", str(root)]) == 3
    err = capsys.readouterr().err
    assert "does not say who holds it" in err and "None" not in err


def test_the_demo_sample_is_package_data_so_demo_works_after_a_plain_install():
    """`pip install .` (not editable) installs only the package: every file of the sample
    must be matched by pyproject's package-data (a wheel built from it was checked by hand
    to run `migrate demo`)."""
    import tomllib
    from pathlib import PurePosixPath

    from migrate import demo
    from tests.conftest import FIXTURES, ROOT

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["migrate"]
    package = ROOT / "migrate"
    files = [p.relative_to(package).as_posix() for p in demo.SAMPLE.rglob("*") if p.is_file()]
    assert len(files) > 10 and demo.SAMPLE.is_relative_to(package)
    assert all(any(PurePosixPath(f).match(pat) for pat in patterns) for f in files)
    assert (FIXTURES / "sample").resolve() == demo.SAMPLE  # the suite's sample is the demo's


def test_a_summary_by_default_every_example_with_v_everything_as_json(fixture_repo, capsys):
    root = str(fixture_repo("sample"))
    assert main(["up", "--repo", root, "--dry-run"]) == 0
    summary = capsys.readouterr().out
    assert main(["up", "--repo", root, "--dry-run", "-v"]) == 0
    verbose = capsys.readouterr().out
    assert main(["up", "--repo", root, "--dry-run", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    notes = [n for step in doc["steps"] for n in step["notes"]]
    assert len(notes) > 10 and all(n in verbose for n in notes)
    assert sum(n in summary for n in notes) < len(notes) and "-v lists them all" in summary
    assert "would change 17 file(s) (-v lists them" in summary
    assert len(doc["files"]) == 17 and doc["final"].startswith("dry run: nothing written")
    assert len(summary.splitlines()) < len(verbose.splitlines())


def test_every_reporting_command_takes_format_json(fixture_repo, capsys):
    root = str(fixture_repo("sample"))
    assert main(["up", "--repo", root, "-q"]) == 0
    capsys.readouterr()
    for argv in (
        ["status"],
        ["history"],
        ["verify"],
        ["check"],
        ["report"],
        ["explain", "homebrew:ffmpeg"],
        ["up", "--dry-run"],
        ["down", "--dry-run"],
    ):
        assert main([*argv, "--repo", root, "--format", "json"]) in (0, 1), argv
        json.loads(capsys.readouterr().out)
    for argv in (["status"], ["history"], ["explain", "homebrew:ffmpeg"]):
        assert main([*argv, "--repo", root, "--json"]) == 0  # (kept as an alias)
        json.loads(capsys.readouterr().out)


def test_new_evidence_at_head_names_the_command_that_applies_it(fixture_repo, capsys):
    root = fixture_repo("sample")
    assert main(["up", "--repo", str(root), "-q"]) == 0
    capsys.readouterr()
    evidence = str(root.parent.parent / "ci")
    Path(evidence).mkdir(exist_ok=True)
    assert main(["up", "--repo", str(root), "--evidence", evidence]) == 0
    out, err = capsys.readouterr()
    assert "nothing to do: at 0003" in out
    assert "migrate down --to 0001" in err and "migrate up --evidence DIR" in err


def test_the_committed_ledger_holds_no_absolute_local_path(fixture_repo, tmp_path):
    from migrate import engine
    from migrate.steps.base import RunOptions
    from migrate.store import Store
    from tests.conftest import FIXTURES

    root = fixture_repo("sample")
    outside = FIXTURES / "evidence" / "ci"
    inside = root / "ci-artifacts"
    shutil.copytree(outside, inside)
    options = RunOptions((str(outside), str(inside)), None, False)
    engine.up(Store(root), options=options)
    (run,) = (root / "data" / ".migrate" / "runs").glob("*[0-9a-f].jsonl")
    head = json.loads(run.read_bytes().split(b"\n", 1)[0])
    far, near = head["options"]["evidence"]
    assert near == "ci-artifacts" and far["name"] == "ci" and len(far["sha256"]) == 64
    assert str(tmp_path) not in run.read_text() and str(FIXTURES) not in run.read_text()


def test_a_truncated_queue_is_reported_at_the_line_where_it_breaks(fixture_repo, capsys):
    root = fixture_repo("sample")
    queue = root / "data" / "queues" / "priority-queue.json"
    queue.write_bytes(b"\n".join(queue.read_bytes().split(b"\n")[:218]))
    assert main(["check", "--repo", str(root), "--format", "github"]) == 1
    out = capsys.readouterr().out
    assert "::error file=data/queues/priority-queue.json,line=218," in out


def test_the_readme_command_reference_is_what_help_prints():
    from migrate.cli import reference
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```text\n" + reference() + "```" in readme, (
        "README's command reference differs from --help: regenerate it (see the README)"
    )


def test_check_quiet_prints_the_violations_and_the_final_line(capsys):
    from tests.conftest import FIXTURES

    assert main(["check", "--repo", str(FIXTURES / "bad-queue"), "-q"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "invalid JSON" in out[0] and out[1] == "1 violation"


def test_a_lock_holding_json_that_is_not_an_object_is_named_too(fixture_repo, capsys):
    root = fixture_repo("sample")
    for text in ("[1, 2]", "5", "null"):
        Path(root / LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
        Path(root / LOCK_FILE).write_text(text)
        assert main(["up", "--repo", str(root)]) == 3
        assert "does not say who holds it" in capsys.readouterr().err


def test_a_relative_recipes_path_is_taken_from_the_current_folder(fixture_repo, monkeypatch):
    root = fixture_repo("sample")
    recipes = root / "recipes" / "a"
    recipes.mkdir(parents=True)
    (recipes / "ada-url.toml").write_text('[metadata]\nname = "ada-url"\n')
    monkeypatch.chdir(root / "data")
    assert main(["up", "-q", "--recipes", "../recipes"]) == 0
    (run,) = (root / "data" / ".migrate" / "runs").glob("*[0-9a-f].jsonl")
    assert json.loads(run.read_bytes().split(b"\n", 1)[0])["options"]["recipes"] == "recipes"


def test_ctrl_c_at_any_moment_ends_with_interrupted_not_a_traceback(fixture_repo):
    """A Ctrl-C while the program's modules load (the first tens of milliseconds) printed a
    KeyboardInterrupt traceback, or crashed Python inside orjson's initialisation."""
    import signal
    import subprocess
    import sys
    import time

    root = fixture_repo("sample")
    for delay in [0.01 * i for i in range(1, 25)]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "migrate", "status", "--repo", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        if "Traceback" in err and f"{os.sep}migrate{os.sep}" not in err:
            continue  # (Python's own start-up, site or runpy: no frame of migrate's code)
        assert "Traceback" not in err, (delay, err)
        # 130: interrupted; 0: it had finished; -SIGINT: before Python started (any program)
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)


def test_jobs_beyond_what_the_machine_can_use_are_not_started(fixture_repo, monkeypatch):
    """`-j 100000` forked until the kernel killed it for memory: at most 4 per CPU, and
    never more than there are files."""
    from concurrent import futures

    from migrate import parallel

    started: list[int] = []
    real = futures.ProcessPoolExecutor

    def counting(workers, *args, **kwargs):
        started.append(workers)
        return real(workers, *args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", counting)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert main(["check", "--repo", str(fixture_repo("sample")), "-q", "-j", "100000"]) == 0
    assert started and max(started) <= 8


def test_history_counts_files_per_step_and_down_offers_only_its_own_options(fixture_repo, capsys):
    """`history` summed each step's changed files (a file changed by three steps counted
    three times); `down`'s summary suggested `--diff`, an option only `up` has."""
    root = fixture_repo("sample")
    assert main(["up", "--repo", str(root), "-q"]) == 0
    assert main(["history", "--repo", str(root)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    run = next((root / "data" / ".migrate" / "runs").glob("*[0-9a-f].jsonl"))
    counts = json.loads(run.read_bytes().split(b"\n", 1)[0])["counts"]
    per_step = ", ".join(f"{sid} {c['files_changed']}" for sid, c in counts.items())
    assert f"files changed by step: {per_step}" in line
    assert main(["down", "--repo", str(root), "--to", "base", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would change" in out and "--diff" not in out
