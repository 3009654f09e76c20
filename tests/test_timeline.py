"""migrate timeline: per-day counts against an independent count (real corpus, a git
repository built from the replay), signatures, alerts on constructed cases and their
silence on real days, the queue's history read from git in one batch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from freezegun import freeze_time

from migrate.cli import main
from migrate.store import Store
from migrate.timeline import build
from migrate.timeline.render import as_dict
from migrate.timeline.signatures import signature
from tests.conftest import CORPUS, SNAPSHOTS, copy_repo, corpus_snapshot
from tests.helpers import CHROMIUM, headless_dom

#: formats.md §3: the older category names and their canonical equivalents
REMAP = {
    "api_error": "network_error",
    "validation_failed": "install_failed",
    "deterministic_insufficient": "generation_failed",
    "deterministic": "generation_failed",
    "timeout": "network_error",
    "network": "network_error",
}
STAMP = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d-\d\d-\d\d)Z")
GIT = shutil.which("git")


def independent_days(root: Path) -> dict[str, Counter]:
    """Per day, counted straight from the files with json: runs, package failures by
    category and ecosystem, platform failures."""
    days: dict[str, Counter] = defaultdict(Counter)
    runs: dict[str, set] = defaultdict(set)
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        stamp = STAMP.search(f.name)
        for text in f.read_text(encoding="utf-8").splitlines():
            if not text.strip():
                continue
            line = json.loads(text)
            if line.get("failures"):
                run = stamp.group(0) if stamp else line["updated_at"].replace(":", "-")
                day = run[:10]
                runs[day].add(run)
                for item in line["failures"]:
                    days[day]["failures"] += 1
                    days[day]["category:" + REMAP.get(item["category"], item["category"])] += 1
                    days[day]["ecosystem:" + line["ecosystem"]] += 1
            elif line.get("recipe"):
                day = stamp.group(1) if stamp else line["timestamp"][:10]
                days[day]["platform_failures"] += 1
    for day, r in runs.items():
        days[day]["runs"] = len(r)
    return days


def tool_days(t) -> dict[str, Counter]:
    out = {}
    for day, row in t.days.iterrows():
        c = Counter(
            {
                k: int(v)
                for k, v in row.items()
                if k.split(":")[0]
                in ("runs", "failures", "platform_failures", "category", "ecosystem")
                and v
            }
        )
        if c:
            out[day] = c
    return out


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_per_day_counts_equal_an_independent_count_on_the_corpus(snapshot, tmp_path):
    root = copy_repo(corpus_snapshot(snapshot), tmp_path)
    t = build(Store(root))
    assert tool_days(t) == independent_days(root)
    assert t.history.source.startswith("not a git repository")
    assert t.days["queue:blocked"].isna().all() if "queue:blocked" in t.days else True


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_no_false_alert_on_the_real_days(snapshot, tmp_path):
    """The real records hold no run where every ecosystem failed alike and no day one
    signature dominates; the pipeline's real pauses are named (counted here from the file
    names: two days or more without a run), and its stop since the snapshot."""
    root = copy_repo(corpus_snapshot(snapshot), tmp_path)
    with freeze_time("2026-03-10"):
        t = build(Store(root))
    kinds = Counter(a.kind for a in t.alerts)
    assert kinds["every_ecosystem_failed"] == 0 and kinds["dominant_signature"] == 0
    run_days = sorted(d for d, c in independent_days(root).items() if c["runs"])

    gaps = [
        (a, b)
        for a, b in zip(run_days, run_days[1:], strict=False)
        if (date.fromisoformat(b) - date.fromisoformat(a)).days - 1 >= 2
    ]
    stopped = [a for a in t.alerts if a.kind == "stopped"]
    assert len(stopped) == len(gaps) + 1
    assert all(f"runs again {b}" in a.text for (_, b), a in zip(gaps, stopped, strict=False))
    assert f"no run since {run_days[-1]}" in stopped[-1].text


def test_a_migrated_repo_gives_the_same_days(tmp_path):
    """Records at any version: after `migrate up`, the same runs and counts per day."""
    root = copy_repo(corpus_snapshot("2026-03-02"), tmp_path)
    before = tool_days(build(Store(root)))
    assert main(["up", "-q", "--repo", str(root)]) == 0
    after = build(Store(root))
    assert {d: c["runs"] for d, c in tool_days(after).items()} == {
        d: c["runs"] for d, c in before.items()
    }
    assert {d: c["failures"] for d, c in tool_days(after).items()} == {
        d: c["failures"] for d, c in before.items()
    }


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("message", "names", "expected"),
    [
        (
            "tsuku collects anonymous usage statistics to improve the tool.\nNo personal"
            " information is collected. See: https://tsuku.dev/telemetry\n\nTo opt out: tsuku"
            " config set telemetry false\n         or export TSUKU_NO_TELEMETRY=1\nError:"
            " registry: recipe oniguruma not found in registry\n\nSuggestion: Verify",
            ("homebrew:jq", "jq"),
            "Error: registry: recipe oniguruma not found in registry",
        ),
        (
            "Warning: Skipping recipe review (--yes).\nCreating recipe for awscli from"
            " homebrew:awscli...\nFetching formula metadata... done (v2.33.17)\nInspecting"
            " bottle contents... failed\ndeterministic generation failed: [complex_archive]"
            " formula awscli bottle contains no binaries in bin/",
            ("homebrew:awscli", "awscli"),
            "deterministic generation failed: [complex_archive] formula <pkg> bottle contains"
            " no binaries in bin/",
        ),
        (
            "Executing plan: rust@1.93.1\n   Work directory: /tmp/action-validator-81723/x\n"
            "error: checksum 9f86d081884c7d65 mismatch for rust 1.93.1 (rust-lang/rust), 3 tries",
            ("crates.io:rust", "rust"),
            "error: checksum <hash> mismatch for <pkg> <v> (<owner/repo>), <n> tries",
        ),
        ("", ("homebrew:x",), "(no message)"),
        (
            "Installation failed: step 2 (npm_exec) failed: expected executable foo not"
            " found at /tmp/tsuku-9/bin/foo...",
            ("npm:foo", "foo"),
            "Installation failed: step <n> (npm_exec) failed: expected executable <pkg> not"
            " found at <tmp>",
        ),
    ],
)
def test_signatures_keep_the_failure_and_drop_what_varies(message, names, expected):
    assert signature(message, names) == expected


def test_two_packages_with_one_failure_share_a_signature():
    a = signature("Error: package 'libfoo' not found in homebrew", ("homebrew:libfoo", "libfoo"))
    b = signature("Error: package 'bar2' not found in homebrew", ("homebrew:bar2", "bar2"))
    assert a == b == "Error: package '<pkg>' not found in homebrew"


# ---------------------------------------------------------------- constructed repos


def envelope(eco: str, stamp: str, items: list[tuple[str, str, str]]) -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "ecosystem": eco,
            "environment": "linux-glibc-x86_64",
            "updated_at": stamp,
            "failures": [
                {
                    "package_id": f"{eco}:{name}",
                    "category": cat,
                    "message": msg,
                    "timestamp": stamp[:10] + "T" + stamp[11:19].replace("-", ":") + "Z",
                }
                for name, cat, msg in items
            ],
        },
        separators=(",", ":"),
    )


def make_repo(root: Path, runs: dict[str, dict[str, list]], ecosystems=("homebrew", "npm", "pypi")):
    """``runs``: stamp -> ecosystem -> [(name, category, message)]."""
    (root / "data" / "failures").mkdir(parents=True)
    (root / "data" / "queues").mkdir(parents=True)
    for stamp, by_eco in runs.items():
        for eco, items in by_eco.items():
            path = root / "data" / "failures" / f"{eco}-{stamp}.jsonl"
            path.write_text(envelope(eco, stamp, items) + "\n")
    entries = [
        {
            "name": f"p{i}",
            "source": f"{eco}:p{i}",
            "priority": 2,
            "status": "pending",
            "confidence": "auto",
            "disambiguated_at": None,
            "failure_count": 0,
            "next_retry_at": None,
        }
        for eco in ecosystems
        for i in range(3)
    ]
    doc = {"schema_version": 1, "updated_at": "2026-04-01T00:00:00Z", "entries": entries}
    (root / "data" / "queues" / "priority-queue.json").write_text(json.dumps(doc, indent=2))
    return root


def test_every_ecosystem_failed_fires_on_a_broken_run_only(tmp_path):
    same = [("p0", "install_failed", "Error: install failed: exit status 1")]
    mixed = [("p1", "generation_failed", "Error: no bottles")]
    runs = {
        "2026-04-02T10-00-00Z": {"homebrew": same, "npm": same, "pypi": same},  # broken
        "2026-04-02T14-00-00Z": {"homebrew": same, "npm": mixed, "pypi": same},  # packages
        "2026-04-03T10-00-00Z": {"homebrew": same, "npm": same},  # one ecosystem ran well
    }
    root = make_repo(tmp_path / "r", runs)
    with freeze_time("2026-04-03 12:00"):
        t = build(Store(root))
    fired = [a for a in t.alerts if a.kind == "every_ecosystem_failed"]
    assert [a.day for a in fired] == ["2026-04-02"]
    assert "2026-04-02T10-00-00Z" in fired[0].text and "3 of 3" in fired[0].text


def test_a_stopped_pipeline_is_said_while_it_lasts_and_after(tmp_path):
    one = {"homebrew": [("p0", "install_failed", "Error: x")]}
    stamps = ["2026-04-01T10-00-00Z", "2026-04-02T10-00-00Z", "2026-04-06T10-00-00Z"]
    root = make_repo(tmp_path / "r", dict.fromkeys(stamps, one))
    with freeze_time("2026-04-06 23:00"):
        t = build(Store(root))
    assert [(a.day, a.text) for a in t.alerts if a.kind == "stopped"] == [
        ("2026-04-03", "the pipeline stopped from 2026-04-03 for 3 days (runs again 2026-04-06)")
    ]
    with freeze_time("2026-04-10 08:00"):
        t = build(Store(root))
    assert [a.text for a in t.alerts if a.kind == "stopped"][-1] == (
        "the pipeline stopped: no run since 2026-04-06 (4 days to 2026-04-10)"
    )
    with freeze_time("2026-04-07 08:00"):  # one idle day: not a stop
        t = build(Store(root), since="2026-04-05")
    assert [a for a in t.alerts if a.kind == "stopped"] == []


def test_a_signature_behind_most_of_a_day_fires_and_half_does_not(tmp_path):
    bad = "Error: install failed: exit status 1"
    day1 = [
        (f"p{i}", "install_failed", bad if i < 4 else f"Error: other {chr(97 + i)}x")
        for i in range(6)
    ]  # 4 of 6
    day2 = [
        (f"p{i}", "install_failed", bad if i < 3 else f"Error: other {chr(97 + i)}y")
        for i in range(6)
    ]  # 3 of 6: not more than half
    runs = {"2026-04-01T10-00-00Z": {"homebrew": day1}, "2026-04-02T10-00-00Z": {"homebrew": day2}}
    root = make_repo(tmp_path / "r", runs, ecosystems=("homebrew",))
    with freeze_time("2026-04-02 12:00"):
        t = build(Store(root))
    fired = [a for a in t.alerts if a.kind == "dominant_signature"]
    assert [a.day for a in fired] == ["2026-04-01"] and "4 of the day's 6" in fired[0].text


def test_new_and_stopped_signatures_on_a_constructed_case(tmp_path):
    """Period 04-08..04-14, the as-long period before 04-01..04-07: A only before
    (stopped), B before and in it (neither), C first on 04-10 (new since 04-08)."""
    a, b, c = "Error: alpha broke", "Error: beta broke", "Error: gamma broke"
    runs = {
        "2026-04-02T10-00-00Z": {
            "homebrew": [("p0", "install_failed", a), ("p1", "install_failed", b)]
        },
        "2026-04-09T10-00-00Z": {"homebrew": [("p1", "install_failed", b)]},
        "2026-04-10T10-00-00Z": {
            "homebrew": [("p2", "install_failed", c), ("p1", "install_failed", b)]
        },
    }
    root = make_repo(tmp_path / "r", runs, ecosystems=("homebrew",))
    with freeze_time("2026-04-14 12:00"):
        t = build(Store(root), since="2026-04-08", until="2026-04-14", new_since="2026-04-08")
    assert list(t.stopped["signature"]) == [a]
    assert list(t.new["signature"]) == [c]
    assert list(t.top["signature"]) == [b, c] and list(t.top["in_period"]) == [2, 1]
    doc = as_dict(t)
    assert doc["signatures"]["new"]["items"][0]["signature"] == c
    assert doc["signatures"]["stopped"][0]["first_seen"].startswith("2026-04-02")


def test_new_since_defaults_to_migrates_last_run(tmp_path):
    one = {"homebrew": [("p0", "install_failed", "Error: x")]}
    root = make_repo(tmp_path / "r", {"2026-04-01T10-00-00Z": one}, ecosystems=("homebrew",))
    with freeze_time("2026-04-05 09:00"):
        assert main(["up", "-q", "--repo", str(root)]) == 0
        t = build(Store(root))
    assert t.new_since == "2026-04-05" and t.new_since_from.startswith("migrate's last run")


def test_an_empty_repo_says_so(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "data" / "failures").mkdir(parents=True)
    assert main(["timeline", "--repo", str(root)]) == 0
    assert "nothing to show" in capsys.readouterr().out
    assert main(["timeline", "--repo", str(root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["days"] == []


def test_bad_days_are_usage_errors(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "data" / "failures").mkdir(parents=True)
    assert (
        main(["timeline", "--repo", str(root), "--since", "2026-04-09", "--until", "2026-04-01"])
        == 2
    )
    assert "is after --until" in capsys.readouterr().err


# ---------------------------------------------------------------- git history


def git(root: Path, *args: str, when: str | None = None) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    if when:
        env |= {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, env=env, capture_output=True, text=True
    ).stdout


def blocked_of(doc: dict) -> set[str]:
    return {e["source"] for e in doc["entries"] if e["status"] == "blocked"}


@pytest.mark.skipif(not GIT, reason="git is needed")
def test_the_replay_as_a_git_repository(tmp_path, monkeypatch):
    """Each replay commit committed in order at its own time: the queue per UTC day is the
    day's last commit's (counted here with json), newly blocked and unblocked are the
    differences between days, and every version is read by one `git cat-file --batch`."""
    replay = CORPUS / "replay-2026-03-03"
    root = copy_repo(corpus_snapshot("2026-03-02"), tmp_path)
    if not replay.is_dir():
        pytest.skip("the replay is not available")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "snapshot", when="2026-03-02T12:00:00Z")
    queue = root / "data" / "queues" / "priority-queue.json"
    versions = {"2026-03-02": json.loads(queue.read_bytes())}
    for c in sorted(p for p in replay.iterdir() if p.is_dir()):
        shutil.copytree(c / "data", root / "data", dirs_exist_ok=True)
        if (c / "deleted.txt").exists():
            for rel in (c / "deleted.txt").read_text().split():
                (root / rel).unlink(missing_ok=True)
        sha, when, _ = (c / "commit.txt").read_text().split("\n", 2)
        git(root, "add", "-A")
        git(root, "commit", "-q", "--allow-empty", "-m", sha, when=when)
        versions["last"] = json.loads(queue.read_bytes())
    spawned = []
    real = subprocess.Popen

    class Counting(real):
        def __init__(self, args, *a, **k):
            spawned.append(list(args))
            super().__init__(args, *a, **k)

    monkeypatch.setattr(subprocess, "Popen", Counting)
    t = build(Store(root))
    monkeypatch.undo()
    assert [d.day for d in t.history.days] == ["2026-03-02", "2026-03-03"]  # (UTC: -05:00)
    assert sum("cat-file" in cmd for cmd in spawned) == 1 and len(spawned) <= 4
    last = versions["last"]
    want = Counter(e["status"] for e in last["entries"])
    row = t.days.loc["2026-03-03"]
    assert {k[6:]: int(v) for k, v in row.items() if k.startswith("queue:") and v} == dict(want)
    first = Counter(e["status"] for e in versions["2026-03-02"]["entries"])
    assert int(t.days.loc["2026-03-02", "queue:pending"]) == first["pending"]
    newly = sorted(blocked_of(last) - blocked_of(versions["2026-03-02"]))
    gone = sorted(blocked_of(versions["2026-03-02"]) - blocked_of(last))
    assert t.newly_blocked["2026-03-03"] == newly
    assert t.newly_unblocked["2026-03-03"] == gone
    assert int(row["newly_blocked"]) == len(newly)
    assert tool_days(t) == independent_days(root)  # (the replay's batches counted too)


@pytest.mark.skipif(not GIT, reason="git is needed")
def test_blocked_rising_and_a_bad_historic_queue_is_skipped_and_counted(tmp_path, capsys):
    one = {"homebrew": [("p0", "install_failed", "Error: x")]}
    root = make_repo(tmp_path / "r", {"2026-04-01T10-00-00Z": one}, ecosystems=("homebrew", "npm"))
    git(root, "init", "-q")
    queue = root / "data" / "queues" / "priority-queue.json"
    doc = json.loads(queue.read_text())
    queue.write_text('{"entries": [')  # (a version a bad merge left)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "broken", when="2026-04-01T09:00:00Z")
    for day, blocked in (("02", 0), ("03", 1), ("04", 2), ("05", 4), ("06", 3)):
        for i, e in enumerate(doc["entries"]):
            e["status"] = "blocked" if i < blocked else "pending"
        queue.write_text(json.dumps(doc, indent=2))
        git(root, "commit", "-qam", day, when=f"2026-04-{day}T09:00:00Z")
        queue.write_text(json.dumps(doc, indent=2) + " ")  # (an earlier save that day)
    git(root, "checkout", "-q", "--", ".")
    with freeze_time("2026-04-06 12:00"):
        t = build(Store(root))
    assert len(t.history.skipped) == 1 and "2026-04-01" in t.history.skipped[0]
    rising = [a for a in t.alerts if a.kind == "blocked_rising"]
    assert [a.day for a in rising] == ["2026-04-05"] and "0 on 2026-04-02 -> 4" in rising[0].text
    assert list(t.days["queue:blocked"].loc["2026-04-02":"2026-04-06"]) == [0, 1, 2, 4, 3]
    with freeze_time("2026-04-06 12:00"):
        assert main(["timeline", "--repo", str(root), "-v"]) == 0
    out = capsys.readouterr().out
    assert "1 unparseable skipped" in out and "skipped 2026-04-01" in out


@pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (apt-get install chromium)")
def test_the_html_reports_charts_are_drawn_in_a_real_browser(fixture_repo, tmp_path):
    """matplotlib's charts are images inside the page (no network): a headless chromium
    decodes every one (the page counts those with a width once loaded)."""
    root = fixture_repo("sample")
    assert main(["up", "-q", "--repo", str(root)]) == 0
    out = tmp_path / "report.html"
    assert main(["report", "--repo", str(root), "--format", "html", "--out", str(out)]) == 0
    page = out.read_text()
    charts = re.findall(r'<img class="chart" data-chart="([^"]+)"', page)
    assert "failures by category" in charts and "top signatures" in charts
    assert "http://" not in page and "https://" not in page  # self-contained
    proc = headless_dom(out, tmp_path / "profile")
    assert f'data-charts-drawn="{len(charts)}"' in proc.stdout, proc.stderr[-2000:]
