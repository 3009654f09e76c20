#!/usr/bin/env python3
"""Benchmark ``migrate up``, ``check`` and ``down`` against the floor, on generated repos.

The floor is measured in the same run: a minimal pass, written with orjson (the parser
the tool itself uses), that reads every failure file, parses each line, serializes it
again, atomically replaces each file and syncs once. Every command runs in its own
process on a fresh copy of the repo; wall time and that process's peak RSS are reported,
with the ratio to the floor.

    python scripts/bench.py                              # the real shape x10
    python scripts/bench.py --jobs 2 --repeat 5          # medians, on a shared host
    python scripts/bench.py --workload large             # few large files, information only
    python scripts/bench.py --repeat 3 --baseline /tmp/old/bin/python   # A/B against
        # another install of migrate (its own venv), every pass interleaved with this one's

Targets on the real shape x10 (about 57,000 files and 66,000 records, the history's file
families and sizes): up (base to head) <= 1.3x the floor, down --to base <= 1.3x,
check <= 0.5x, peak RSS <= 200 MB; a catch-up after one batch (six new files and a queue
saved by tsuku's jobs) <= 10% of a full up. The large workload has no target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_corpus import other_writers  # noqa: E402

WORKLOADS = {
    "real": {"records": 66000, "files": 60000, "what": "the real shape x10"},
    "large": {"records": 250000, "files": 12, "what": "few large files (information only)"},
}
TARGETS = {"up": 1.3, "down": 1.3, "check": 0.5, "check v2": 0.5}
RSS_TARGET_MB = 200
#: a catch-up after one batch (six new files, the queue saved by tsuku's jobs), of a full up
CATCH_UP_TARGET = 0.10
FLOOR = r"""
import orjson, os, sys
root = sys.argv[1]
folder = os.path.join(root, "data", "failures")
for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    with open(path, "rb") as fh:
        data = fh.read()
    out = [orjson.dumps(orjson.loads(line)) for line in data.split(b"\n") if line.strip()]
    tmp = os.path.join(folder, "." + name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(b"".join(x + b"\n" for x in out))
    os.replace(tmp, path)
os.sync()
"""


def run(cmd: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one child process."""
    start = time.perf_counter()
    # cwd "/": `python -m migrate` must load the interpreter's own install, not a checkout
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(f"  ! {' '.join(cmd[-4:])} exited {code}: {err[-500:]}", file=sys.stderr)
    return wall, usage.ru_maxrss // 1024, code


def compile_package() -> None:
    """Write the tool's bytecode once, as ``pip install`` does: the timed runs then load it
    instead of compiling 29 modules each (0.03-0.06 s a run). Python writes it on first
    import anyway, unless PYTHONDONTWRITEBYTECODE is set, as on this project's machines."""
    import compileall

    import migrate

    compileall.compile_dir(Path(migrate.__file__).parent, quiet=1)


def bench(
    name: str, jobs: int, keep: Path | None, repeat: int = 1, baseline: str | None = None
) -> dict:
    w = WORKLOADS[name]
    base = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    pristine = base / "pristine"
    gen = subprocess.run(
        [
            sys.executable,
            str(HERE / "gen_corpus.py"),
            str(pristine),
            "--records",
            str(w["records"]),
            "--files",
            str(w["files"]),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(gen.stdout)
    tools = {"": [sys.executable, "-m", "migrate"]}
    if baseline:
        tools[" (baseline)"] = [baseline, "-m", "migrate"]

    def fresh() -> Path:
        work = base / "work"
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(pristine, work)
        os.sync()
        return work

    runs: dict[str, list[tuple[float, int, int]]] = {}
    same = True
    for _ in range(repeat):  # interleaved, so that a slow spell of the host hits every pass
        work = fresh()
        runs.setdefault("floor", []).append(run([sys.executable, "-c", FLOOR, str(work)]))
        for suffix, migrate in tools.items():
            same = passes(migrate, suffix, fresh(), pristine, jobs, runs) and same
    # the median run of each pass (wall time), with the largest peak RSS of all its runs
    results = {
        key: (
            statistics.median(r[0] for r in rs),
            max(r[1] for r in rs),
            max(r[2] for r in rs),
        )
        for key, rs in runs.items()
    }
    if keep:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.move(str(pristine), keep)
    shutil.rmtree(base, ignore_errors=True)
    floor = results["floor"][0]
    print(
        f"\n{name}: {w['what']}: {info['records']:,} records in {info['files']:,} failure files,"
        f" {info['queue_entries']:,} queue entries; jobs={jobs}"
    )
    print(f"  {'pass':<20} {'wall s':>8} {'x floor':>8} {'peak MB':>8}  target")
    for key, (wall, rss, _code) in results.items():
        verdict = ""
        if name == "real" and key == "catch-up":
            ok = wall <= results["up"][0] * CATCH_UP_TARGET
            verdict = f"<= {CATCH_UP_TARGET:.0%} of up: {'met' if ok else 'MISSED'}"
        if name == "real" and key in TARGETS:
            ok = wall / floor <= TARGETS[key] and rss <= RSS_TARGET_MB
            verdict = f"<= {TARGETS[key]}x, <= {RSS_TARGET_MB} MB: {'met' if ok else 'MISSED'}"
        print(f"  {key:<20} {wall:8.2f} {wall / floor:8.2f} {rss:8d}  {verdict}")
    if repeat > 1:
        print(f"  (median of {repeat} runs; x floor from the medians; all walls below)")
        for key, rs in runs.items():
            walls = sorted(r[0] for r in rs)
            print(f"  {key:<20} " + " ".join(f"{w:.2f}" for w in walls))
    print(f"  round trip up -> down byte-identical: {same}")
    return {
        "workload": name,
        **info,
        "jobs": jobs,
        "repeat": repeat,
        "round_trip_exact": same,
        "results": {
            k: {
                "seconds": round(v[0], 3),
                "x_floor": round(v[0] / floor, 2),
                "peak_rss_mb": v[1],
                "exit": v[2],
                "all_seconds": [round(r[0], 3) for r in runs[k]],
            }
            for k, v in results.items()
        },
    }


def passes(migrate, suffix, work, pristine, jobs, runs) -> bool:
    """check, up, check, down --to base, then up and a catch-up after one batch; whether
    the round trip was byte-identical."""
    for key, args in (
        ("check", ["check"]),
        ("up", ["up"]),
        ("check v2", ["check"]),
        ("down", ["down", "--to", "base"]),
    ):
        cmd = [*migrate, *args, "-q", "--repo", str(work), *jobs_arg(jobs)]
        runs.setdefault(key + suffix, []).append(run(cmd))
    diff = ["diff", "-r", "-q", str(pristine / "data"), str(work / "data")]
    same = subprocess.run(diff, capture_output=True).returncode == 0
    # the running pipeline: migrated, then one batch of other writers, then `up`
    run([*migrate, "up", "-q", "--repo", str(work), *jobs_arg(jobs)])
    other_writers(work, pristine)
    cmd = [*migrate, "up", "-q", "--repo", str(work), *jobs_arg(jobs)]
    runs.setdefault("catch-up" + suffix, []).append(run(cmd))
    return same


def jobs_arg(jobs: int) -> list[str]:
    return ["--jobs", str(jobs)] if jobs > 1 else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=[*WORKLOADS, "both"], default="real")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep the generated repo of the last workload")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every pass N times, interleaved, and report medians (for a shared host)",
    )
    ap.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="also run every pass with this interpreter's migrate (another venv), interleaved",
    )
    a = ap.parse_args()
    names = list(WORKLOADS) if a.workload == "both" else [a.workload]
    compile_package()
    out = [
        bench(n, a.jobs, Path(a.keep) if a.keep else None, max(1, a.repeat), a.baseline)
        for n in names
    ]
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
