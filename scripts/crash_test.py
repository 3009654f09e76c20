#!/usr/bin/env python3
"""Kill `migrate up` (and `migrate down`) with SIGKILL at random instants, then check that
the next run finishes with exactly the data of an uninterrupted run, and that
`migrate down --to base` gives back the original bytes. The catch-up phase kills the `up`
that follows a batch of other writers (six new v1 files, the queue saved the way tsuku's
struct saves it): it must end as an uninterrupted catch-up, and `down --to base` then gives
the tree as the other writers left it. The last phase kills that `down --to base`, after
the catch-up: finished, it must give the same tree.

    python scripts/crash_test.py --records 15000 --files 12000 --kills 30
    python scripts/crash_test.py --records 60000 --files 12 --kills 20 --jobs 2

Times recorded by the tool (a run's id and time, a queue's updated_at, which the queue
step's change set records and the run's seal covers) differ between runs by nature and
are the only fields left out of the comparison; so is migrate's cache (git ignores it,
and a run rebuilds it where a kill lost it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_corpus import other_writers  # noqa: E402

MIGRATE = [sys.executable, "-m", "migrate"]


def snapshot(root: Path, normalize: bool) -> dict[str, bytes]:
    out = {}
    for p in sorted((root / "data").rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if rel.startswith(("data/.migrate/cache/", "data/.migrate/tmp/")):
            continue  # a cache, rebuilt where missing (a kill may lose it)
        data = p.read_bytes()
        if normalize and rel.endswith(".json") and "queues" in rel:
            doc = json.loads(data)
            doc.pop("updated_at", None)
            data = json.dumps(doc, sort_keys=True).encode()
        elif normalize and rel.startswith("data/.migrate/runs/"):
            rel = rel[: len("data/.migrate/runs/") + 6]  # the run's number, not its id
            head, *entries = [json.loads(x) for x in data.splitlines()]
            for key in ("run", "at"):
                head.pop(key)
            head.pop("sum", None)  # (it seals the entries, the queues' updated_at included)
            for entry in entries:  # a queue's change set records the updated_at it set
                for patch in (entry.get("patch") or {}).values():
                    if isinstance(patch, dict) and "header" in patch:
                        patch["header"].pop("updated_at", None)
            data = json.dumps([head, *entries], sort_keys=True).encode()
        out[rel] = data
    return out


def differ(got: dict[str, bytes], want: dict[str, bytes]) -> list[str]:
    """The files whose bytes differ, or that only one side has."""
    return sorted(rel for rel in got.keys() | want.keys() if got.get(rel) != want.get(rel))


def run(args: list[str], repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MIGRATE, *args, "-q", "--repo", str(repo)], capture_output=True, text=True
    )


def kill_at(args: list[str], repo: Path, delay: float) -> int | None:
    proc = subprocess.Popen(
        [*MIGRATE, *args, "-q", "--repo", str(repo)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    return proc.returncode


def settle(args: list[str], repo: Path) -> None:
    """The recovery a user would do: run the same command again (a stale lock is taken over)."""
    res = run(args, repo)
    if res.returncode != 0:
        raise SystemExit(f"recovery `migrate {' '.join(args)}` failed: {res.stderr}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=15000)
    ap.add_argument("--files", type=int, default=12000)
    ap.add_argument("--kills", type=int, default=30, help="kills during up (as many during down)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=1, help="-j N for every migrate run")
    a = ap.parse_args()
    jobs = ["-j", str(a.jobs)]
    rnd = random.Random(a.seed)
    base = Path(tempfile.mkdtemp(prefix="crash-"))
    pristine = base / "pristine"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "gen_corpus.py"),
            str(pristine),
            "--records",
            str(a.records),
            "--files",
            str(a.files),
        ],
        check=True,
        capture_output=True,
    )
    original = snapshot(pristine, normalize=False)
    ref = base / "ref"
    shutil.copytree(pristine, ref)
    t0 = time.perf_counter()
    settle(["up", *jobs], ref)
    t_up = time.perf_counter() - t0
    expected = snapshot(ref, normalize=True)
    t0 = time.perf_counter()
    settle(["down", "--to", "base", *jobs], ref)
    t_down = time.perf_counter() - t0
    assert snapshot(ref, normalize=False) == original, "an uninterrupted round trip is not exact"
    print(f"repo: {len(original)} files; uninterrupted up {t_up:.1f}s, down {t_down:.1f}s")
    # the catch-up reference: migrated, then the other writers' batch, then `up`
    settle(["up", *jobs], ref)
    other_writers(ref, pristine)
    # what down --to base must give after a catch-up: the batch on the original tree, the
    # queue as their struct would have saved the original (migrate's values taken out)
    theirs = pristine.with_name("theirs")
    shutil.copytree(pristine, theirs)
    other_writers(theirs, pristine)
    left_by_others = snapshot(theirs, normalize=False)
    t0 = time.perf_counter()
    settle(["up", *jobs], ref)
    t_catch = time.perf_counter() - t0
    caught_up = snapshot(ref, normalize=True)
    failures = 0
    for phase in ("up", "down", "catch-up", "down after catch-up"):
        landed: dict[str, int] = {}
        for i in range(a.kills):
            work = base / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(pristine, work)
            if phase != "up":
                settle(["up", *jobs], work)
            if "catch-up" in phase:
                other_writers(work, pristine)
            if phase == "down after catch-up":
                settle(["up", *jobs], work)
            t = {"up": t_up, "catch-up": t_catch}.get(phase, t_down)
            # every other kill in the run's last third: where files are being replaced
            delay = rnd.uniform(0.05, t * 1.05) if i % 2 else rnd.uniform(t * 0.65, t * 1.05)
            args = [*(["down", "--to", "base"] if "down" in phase else ["up"]), *jobs]
            code = kill_at(args, work, delay)
            st = run(["status", "--json"], work)
            state = "finished" if code is not None else "killed"
            if st.returncode == 0:
                doc = json.loads(st.stdout)
                state += f" at {doc['current'] or 'base'}"
                if "unfinished" in doc:
                    state += f" (its {doc['unfinished']['kind']} run pending)"
            landed[state] = landed.get(state, 0) + 1
            if phase in ("up", "catch-up"):
                settle(["up", *jobs], work)
                want = expected if phase == "up" else caught_up
                wrong = differ(snapshot(work, normalize=True), want)
                settle(["down", "--to", "base", *jobs], work)
                back = original if phase == "up" else left_by_others
                wrong += differ(snapshot(work, normalize=False), back)
            else:
                settle(["down", "--to", "base", *jobs], work)
                back = original if phase == "down" else left_by_others
                wrong = differ(snapshot(work, normalize=False), back)
            if wrong:
                failures += 1
                print(f"  FAIL {phase} kill #{i} after {delay:.2f}s ({state})")
                print(f"    differ: {', '.join(wrong[:5])}" + (" ..." if len(wrong) > 5 else ""))
        print(f"{phase}: {a.kills} kills; where they landed:")
        for state, n in sorted(landed.items()):
            print(f"  {n:3d}  {state}")
    shutil.rmtree(base, ignore_errors=True)
    print("all recoveries exact" if not failures else f"{failures} recoveries NOT exact")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
