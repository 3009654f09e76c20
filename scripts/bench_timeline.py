#!/usr/bin/env python3
"""Benchmark ``migrate timeline`` on the real shape (x1) with a git history of the queue.

Generates the real shape (about 5,300 failure files, a 1.4 MB unified queue) as a git
repository of one commit per day for 150 days (February to the pipeline's stop in June):
that day's failure files and the queue as tsuku's jobs would have left it (a share of
entries blocked or failed, changing day by day), committed at the day's date. Then times,
each in its own process: the text view, JSON (all of history) and CSV, and the HTML
report with its charts (after `migrate up`).

    python scripts/bench_timeline.py                 # target: <= 10 s, < 300 MB each
    python scripts/bench_timeline.py --keep /tmp/tl  # keep the generated repository
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import compile_package, run  # noqa: E402
from gen_corpus import generate  # noqa: E402

SECONDS_TARGET, RSS_TARGET_MB = 10.0, 300
HISTORY_DAYS = 150
QUEUE_ENTRIES = 5305
MIGRATE = [sys.executable, "-m", "migrate"]
_DAY = re.compile(r"(\d{4}-\d\d-\d\d)T")


def git(repo: Path, *args: str, day: str | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.org")
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.org"}
    if day:
        env |= {"GIT_AUTHOR_DATE": f"{day}T20:00:00Z", "GIT_COMMITTER_DATE": f"{day}T20:00:00Z"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def history_repo(out: Path, records: int, files: int) -> dict:
    """The generated tree, committed day by day (see the module's docstring)."""
    src = out.parent / "src"
    generate(src, records, files, seed=1)
    by_day: dict[str, list[Path]] = {}
    for p in sorted((src / "data" / "failures").iterdir()):
        m = _DAY.search(p.name)
        by_day.setdefault(m.group(1) if m else "", []).append(p)
    stamped = sorted(d for d in by_day if d)
    by_day[stamped[0]] = by_day.pop("", []) + by_day[stamped[0]]
    # every calendar day for HISTORY_DAYS (the real history: February to the stop in June),
    # a queue save each day, failure files on the days the generator gave them
    first = date.fromisoformat(stamped[0])
    days = [(first + timedelta(days=i)).isoformat() for i in range(HISTORY_DAYS)]
    days = sorted(set(days) | set(stamped))
    (out / "data" / "failures").mkdir(parents=True)
    (out / "data" / "queues").mkdir(parents=True)
    git(out, "init", "-q")
    queue = json.loads((src / "data" / "queues" / "priority-queue.json").read_bytes())
    # the real queue's size (5,305 entries, 1.4 MB on 2026-03-02): the generated entries
    # repeated under new names
    base = list(queue["entries"])
    while len(queue["entries"]) < QUEUE_ENTRIES:
        k = len(queue["entries"]) // len(base)
        queue["entries"] += [
            e | {"name": f"{e['name']}-{k}", "source": f"{e['source']}-{k}"} for e in base
        ]
    del queue["entries"][QUEUE_ENTRIES:]
    rng = random.Random(1)
    for i, day in enumerate(days):
        for p in by_day.get(day, []):
            shutil.copyfile(p, out / "data" / "failures" / p.name)
        share = 0.01 + 0.02 * i / len(days)  # (blocked grows over time)
        for e in queue["entries"]:
            e.pop("blocked_by", None)
            roll = rng.random()
            e["status"] = "blocked" if roll < share else "failed" if roll < 0.05 else "pending"
        queue["updated_at"] = f"{day}T20:00:00Z"
        (out / "data" / "queues" / "priority-queue.json").write_text(json.dumps(queue, indent=2))
        git(out, "add", "-A")
        git(out, "commit", "-q", "-m", f"batch {day}", day=day)
    shutil.rmtree(src)
    return {"days": len(days), "files": sum(len(v) for v in by_day.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=6600)
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--keep", metavar="DIR", help="keep the generated repository here")
    a = ap.parse_args()
    compile_package()
    tmp = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    repo = tmp / "repo"
    shape = history_repo(repo, a.records, a.files)
    print(f"repository: {shape['files']} failure files, {shape['days']} daily commits")
    results = {}
    passes = {
        "timeline (text, last 14 days)": ["timeline"],
        "timeline --format json (all)": ["timeline", "--format", "json"],
        "timeline --format csv (all)": ["timeline", "--format", "csv"],
    }
    for name, args in passes.items():
        results[name] = run([*MIGRATE, *args, "--repo", str(repo)])
    run([*MIGRATE, "up", "-q", "--repo", str(repo)])
    out = tmp / "report.html"
    html = [*MIGRATE, "report", "--format", "html", "--out", str(out), "--repo", str(repo)]
    results["report --format html (charts)"] = run(html)
    ok = True
    for name, (wall, rss, code) in results.items():
        met = wall <= SECONDS_TARGET and rss < RSS_TARGET_MB and code == 0
        ok &= met
        print(f"{name:<34} {wall:6.2f} s {rss:5d} MB  {'met' if met else 'MISSED'}")
    if a.keep:
        shutil.rmtree(a.keep, ignore_errors=True)
        shutil.move(str(repo), a.keep)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
