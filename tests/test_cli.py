"""The CLI is thin: it maps library calls to output and exit codes."""

from __future__ import annotations

import json
from types import SimpleNamespace

from migrate.cli import main
from migrate.progress import progress_for


def test_status_json_and_check_exit_codes(fixture_repo, capsys):
    root = str(fixture_repo("sample"))
    assert main(["status", "--repo", root, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st == {"current": None, "head": st["head"], "pending": st["pending"]}
    assert st["pending"] and st["pending"][-1] == st["head"]
    assert main(["status", "--repo", root, "--check"]) == 1  # (not a usage error: 2)
    assert "not at head" in capsys.readouterr().err
    assert main(["up", "--repo", root, "--dry-run", "-q"]) == 0  # -q: the final line only
    assert capsys.readouterr().out == "dry run: nothing written; the repo stays at base\n"
    assert main(["up", "--repo", root]) == 0
    out = capsys.readouterr().out
    assert "0001 records-v2: changed 15 of 15 files" in out  # (a zero-byte file needs none)
    assert "0003 queue-status: changed 2 of 2 files" in out
    assert out.splitlines()[-1].startswith("now at 0003 (")  # the final line: where it is
    assert main(["status", "--repo", root, "--check"]) == 0
    assert "behind:  0 file(s)" in capsys.readouterr().out
    assert main(["history", "--repo", root]) == 0
    assert "up base -> 0003  (0001, 0002, 0003)" in capsys.readouterr().out
    assert main(["verify", "--repo", root]) == 0
    assert main(["down", "--repo", root, "--to", "base"]) == 0
    assert "now at base" in capsys.readouterr().out


def test_dry_run_prints_plan_per_file_counts_and_diff(fixture_repo, capsys):
    root = str(fixture_repo("sample"))
    assert main(["up", "--repo", root, "--dry-run", "--diff"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: apply 0001 records-v2")
    assert "would change data/failures/homebrew.jsonl" in out
    assert "+++ b/data/failures/homebrew.jsonl" in out


def test_bad_input_lists_lines_on_stderr_and_exits_2(fixture_repo, capsys):
    root = str(fixture_repo("bad"))
    assert main(["up", "--repo", root]) == 2
    err = capsys.readouterr().err
    assert "data/failures/broken.jsonl:2: invalid JSON" in err
    assert "nothing was written" in err


def test_progress_is_off_when_quiet_and_one_line_per_phase_in_a_log(fixture_repo, capsys):
    assert progress_for(SimpleNamespace(quiet=True), "x") is None
    root = str(fixture_repo("sample"))
    assert main(["up", "--repo", root, "-j", "1"]) == 0  # (stderr is not a terminal here)
    err = capsys.readouterr().err.splitlines()
    assert "up: 0001+0002 failure files: 15 file(s) in" in err[1]  # (after the read pass)
    assert [line.split(":")[1].strip() for line in err] == [
        "read every failure file",
        "0001+0002 failure files",
        "replace the files",
    ]
    assert main(["down", "--repo", root, "--to", "base", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_bar_with_the_phase_a_total_and_an_eta(capsys, monkeypatch):
    import tqdm

    real = tqdm.tqdm
    monkeypatch.setattr(tqdm, "tqdm", lambda **kw: real(**{**kw, "delay": 0}))  # (shown now)
    wrap = progress_for(SimpleNamespace(quiet=False), "up", tty=True)("0001 failures", 3)
    assert list(wrap(iter("abc"))) == ["a", "b", "c"]
    bar = capsys.readouterr().err
    assert "up: 0001 failures" in bar and "/3" in bar and "<" in bar  # name, total, ETA


def test_demo_round_trips(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "round trip: every file is byte-identical" in out
