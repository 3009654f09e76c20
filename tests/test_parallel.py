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


def _slow(rel: str) -> str:
    time.sleep(0.002)
    return rel


def test_a_ctrl_c_while_workers_run_stops_the_map_between_results():
    """The interrupt is raised in the main process between two results (raised inside the
    executor's machinery, about one Ctrl-C in 30 printed tracebacks of its locks or hung
    for good): the results before it came in order, the workers are gone, and Ctrl-C is
    handled as before once the map is over."""
    import multiprocessing

    rels = [str(i) for i in range(4000)]  # (4 s of work, in chunks of 250: 0.5 s each)
    got: list[str] = []
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))  # (after some results)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for rel in map_files(_slow, rels, jobs=2):
            got.append(rel)
    timer.join()
    assert 0 < len(got) < len(rels) and got == rels[: len(got)]
    assert multiprocessing.active_children() == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
