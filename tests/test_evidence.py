"""Evidence readers: names with provenance from messages, install JSON, CI artifacts, logs."""

from __future__ import annotations

import json

import pytest

from migrate.evidence.artifacts import scan_dirs
from migrate.evidence.messages import blocker_names, true_not_found
from migrate.store import Store
from tests.conftest import FIXTURES

EVIDENCE = FIXTURES / "evidence"


@pytest.mark.parametrize(
    "message, names",
    [
        ("Error: registry: recipe ada-url not found in registry", ["ada-url"]),
        ("recipe openssl@3 not found in registry", ["openssl@3"]),
        (
            "Error: failed to install runtime dependency 'ada-url': registry: recipe ada-url"
            " not found in registry\n  tsuku create ada-url --from <ecosystem>",
            ["ada-url"],
        ),
        (
            "deterministic generation failed: [missing_dep] missing dependencies: recipe"
            " libsodium not found in registry; recipe python@3.14 not found in registry",
            ["libsodium", "python@3.14"],
        ),
        # duplicates collapse, first-seen order kept
        (
            "recipe b not found in registry\nrecipe a not found in registry\n"
            "recipe b not found in registry",
            ["b", "a"],
        ),
        # truncated mid-phrase: the cut name is not a name
        (
            "[missing_dep] missing dependencies: recipe luv not found in registry; recipe unibi...",
            ["luv"],
        ),
        ("recipe pinentry not ...", []),
        # not blockers
        (
            "Checking runtime dependencies for node...\n"
            "  Resolving runtime dependency 'ada-url'...",
            [],
        ),
        ("Installing dependency: patchelf@0.18.0\nSkipping dependency: zlib", []),
        ("Installing eval-time dependencies: [python]\neval-time dependencies not satisfied", []),
        ("failed to generate plan for dependency gcc-libs", []),
        ("Error: failed to install runtime dependency 'gcc-libs': download failed: 404", []),
        ("Error: package 'exa' not found in homebrew", []),
        # hygiene: rejected names
        ("recipe ../etc not found in registry; recipe a/b not found in registry", []),
        ("", []),
    ],
)
def test_message_names(message, names):
    assert blocker_names(message, "pkg").names == names


def test_the_package_is_never_its_own_blocker():
    assert blocker_names("recipe node not found in registry", "node").names == []


def test_true_not_found_names_the_source_package():
    assert true_not_found("Error: package 'exa' not found in homebrew") == "exa"
    assert true_not_found("Error: registry: recipe exa not found in registry") is None


def test_artifacts_are_recognized_by_content_with_provenance():
    ev = scan_dirs([str(EVIDENCE)])
    assert ev.files == {"install_json": 3, "log": 1, "validation_results": 3}
    by = {(f.source, f.recipe, f.platform): f for f in ev.findings}
    apr = by[("validation_results", "apr-util", "linux-alpine-musl-x86_64")]
    assert apr.names == ["apr"] and apr.exit_code == 8 and apr.run == "2026-02-21T07-27-58Z"
    assert apr.file.endswith("validation-results-linux-alpine-musl-x86_64.json") and apr.line == 3
    tmux = by[("install_json", "tmux", None)]  # recipe from the file name, new exit-code key
    assert tmux.names == ["libevent"] and tmux.exit_code == 8
    assert tmux.run == "2026-02-08T02-33-27Z" and "install_exit_code 8" in tmux.detail
    gitui = by[("install_json", "gitui", None)]  # old exit-code key, no run stamp
    assert gitui.names == ["openssl@3", "zlib-ng"] and gitui.run is None
    assert by[("install_json", "pyenv", None)].names == []  # explicit: nothing missing
    log = by[("log", "awscli", None)]
    assert log.names == ["python@3.13"] and log.package_id == "homebrew:awscli"
    assert log.line == 2 and log.run == "2026-02-07T04-01-41Z"
    assert not [f for f in ev.findings if f.recipe == "ffmpeg"]  # wrappers alone prove nothing


def test_malformed_evidence_is_reported_and_skipped():
    ev = scan_dirs([str(EVIDENCE / "broken"), "/no/such/folder"])
    assert ev.findings == []
    joined = "\n".join(ev.problems)
    assert "validation-results-darwin-arm64.json: invalid JSON" in joined
    assert "install-bad.json: missing_recipes: expected a list of names" in joined
    assert "notes.txt: no evidence recognized" in joined
    assert "unrelated.json: JSON of no known evidence kind" in joined
    assert "/no/such/folder: no such file or directory" in joined


def test_rejected_names_in_artifacts_are_reported(tmp_path):
    (tmp_path / "x.json").write_text(
        json.dumps({"status": "error", "missing_recipes": ["ok", "../evil", "<b>"], "exit_code": 8})
    )
    ev = scan_dirs([str(tmp_path)])
    assert ev.findings[0].names == ["ok"]
    assert "rejected names ['../evil', '<b>']" in ev.problems[0]


def test_one_name_rule_the_models_for_evidence_too(fixture_repo, tmp_path, capsys):
    """An install JSON naming "openssl 3" (a blank: no real name has one) is reported and
    its bad name skipped; the run commits every step and the data checks clean (it used
    to pass the evidence filter, commit two steps and stop at the third)."""
    from migrate import engine
    from migrate.check import check_repo
    from migrate.cli import main

    root = fixture_repo("sample")
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "gitui.json").write_text(
        json.dumps({"status": "error", "missing_recipes": ["openssl 3", "zlib-ng"], "exit_code": 8})
    )
    assert main(["up", "--repo", str(root), "--evidence", str(ev)]) == 0
    out = capsys.readouterr().out
    assert "rejected names ['openssl 3']" in out
    assert engine.status(Store(root))["current"] == "0003"
    assert check_repo(Store(root)).ok
