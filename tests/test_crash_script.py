"""The crash script itself runs: SIGKILL at random instants, then exact recovery (small)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_crash_script_recovers_exactly_from_random_kills(jobs):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "crash_test.py"),
            "--records",
            "300",
            "--files",
            "200",
            "--kills",
            "3",
            "--jobs",
            jobs,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all recoveries exact" in proc.stdout
    assert proc.stdout.count("kills; where they landed") == 4  # up, down, catch-up, its down
