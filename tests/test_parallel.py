"""``map_files``: the same results as a serial run, and no worker outlives its run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from migrate.parallel import map_files


def test_results_come_back_in_the_order_of_the_files():
    rels = [f"f{i}" for i in range(40)]
    assert list(map_files(str.upper, rels, 2)) == [r.upper() for r in rels]


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_workers_die_with_a_killed_run(tmp_path):
    """A SIGKILLed `migrate up -j2` must not leave workers staging files (the next run
    takes over the dead run's lock) or blocked forever on a pipe nobody reads."""
    pids = tmp_path / "pids"
    pids.mkdir()
    script = textwrap.dedent(
        f"""
        import os, time
        from migrate.parallel import map_files

        def work(rel):
            open(os.path.join({str(pids)!r}, str(os.getpid())), "w").close()
            time.sleep(60)

        list(map_files(work, [str(i) for i in range(8)], 2))
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while len(os.listdir(pids)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [int(p) for p in os.listdir(pids)]
        assert len(workers) == 2
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    deadline = time.monotonic() + 10
    while any(_state(p) not in (None, "Z") for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = {p: _state(p) for p in workers if _state(p) not in (None, "Z")}
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert alive == {}


def test_a_pool_started_in_a_thread_that_ends_keeps_its_workers():
    """The death signal follows the thread that forked the workers; a pool started by a
    thread that then ends (the rest consumed by another) must still give every result."""
    rels = [f"f{i}" for i in range(8)]
    results = map_files(_slow_upper, rels, 2)
    first: list[str] = []
    starter = threading.Thread(target=lambda: first.append(next(results)))
    starter.start()
    starter.join()
    assert first + list(results) == [r.upper() for r in rels]


def _slow_upper(rel: str) -> str:
    time.sleep(0.05)
    return rel.upper()


def test_what_a_run_freezes_goes_back_to_the_collector_when_it_ends(fixture_repo):
    import gc

    from migrate import engine
    from migrate.parallel import long_lived
    from migrate.repo import DataRepo

    assert gc.get_freeze_count() == 0
    with long_lived():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert list(map_files(str.upper, ["a", "b", "c"], 2)) == ["A", "B", "C"]
        assert gc.get_freeze_count() >= frozen  # (an inner block leaves it frozen)
    assert gc.get_freeze_count() == 0
    engine.up(DataRepo(fixture_repo("sample")), jobs=2)  # (used as a library: tests, demo)
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a process that freezes objects of its own keeps them frozen
    try:
        mine = gc.get_freeze_count()
        with long_lived():
            pass
        assert gc.get_freeze_count() >= mine > 0
    finally:
        gc.unfreeze()


def test_the_program_leaves_it_frozen_to_the_end(tmp_path):
    """``migrate`` (the program) ends after one command: no last full pass over it all."""
    code = textwrap.dedent(
        """
        import gc, sys
        from migrate import cli
        from migrate.parallel import long_lived
        def body():
            with long_lived():
                pass
            print(gc.get_freeze_count() > 0)
            return 0
        cli.main = body
        sys.exit(cli.run())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"]
