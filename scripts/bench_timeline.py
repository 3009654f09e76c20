#!/usr/bin/env python3
"""Benchmark ``migrate timeline`` on the real shape (x1) with a git history of the queue.

Generates the real shape (about 6,000 failure files over 78 days, a 1.5 MB unified queue)
as a git repository of one commit per day: that day's failure files and the queue as
tsuku's jobs would have left it (a share of entries blocked or failed, changing day by
day), committed at the day's date. Then times, each in its own process: the text view,
JSON (all of history) and CSV, and the HTML report with its charts (after `migrate up`).

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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import compile_package, run  # noqa: E402
from gen_corpus import generate  # noqa: E402

SECONDS_TARGET, RSS_TARGET_MB = 10.0, 300
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
    days = sorted(d for d in by_day if d)
    by_day[days[0]] = by_day.pop("", []) + by_day[days[0]]
    (out / "data" / "failures").mkdir(parents=True)
    (out / "data" / "queues").mkdir(parents=True)
    git(out, "init", "-q")
    queue = json.loads((src / "data" / "queues" / "priority-queue.json").read_bytes())
    rng = random.Random(1)
    for i, day in enumerate(days):
        for p in by_day[day]:
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
