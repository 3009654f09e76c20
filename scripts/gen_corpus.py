#!/usr/bin/env python3
"""Generate a synthetic tsuku data repo shaped like the real one (deterministic per seed).

Shapes copied from the real history (see ../shared/reference/formats.md): the mixed
``homebrew.jsonl`` (envelopes with colon ``updated_at`` + per-platform lines), timestamped
envelope files for six ecosystems (dashed ``updated_at``), ``homebrew-<ts>`` and
``batch-<ts>`` per-platform files (a few zero bytes), messages with registry errors,
true not-founds, dependency chatter and 500-byte truncation, the same packages retried
across runs, and a unified queue plus a stale legacy homebrew queue.

    python scripts/gen_corpus.py OUT --records 66000 --files 60000  # the real shape x10
    python scripts/gen_corpus.py OUT --records 250000 --files 12    # few large files (info)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

ECOSYSTEMS = [
    ("homebrew", 70),
    ("github", 10),
    ("npm", 8),
    ("crates.io", 5),
    ("pypi", 4),
    ("rubygems", 3),
]
PLATFORMS = [
    "linux-alpine-musl-x86_64",
    "linux-alpine-musl-arm64",
    "linux-debian-glibc-x86_64",
    "linux-rhel-glibc-arm64",
    "linux-suse-glibc-x86_64",
    "linux-arch-glibc-x86_64",
    "darwin-arm64",
    "darwin-x86_64",
]
LEGACY = [
    "validation_failed",
    "deterministic_insufficient",
    "missing_dep",
    "recipe_not_found",
    "generation_failed",
    "install_failed",
    "api_error",
]
TELEMETRY = (
    "tsuku collects anonymous usage statistics to improve the tool.\nNo personal "
    "information is collected. See: https://tsuku.dev/telemetry\n\nTo opt out: tsuku "
    "config set telemetry false\n         or export TSUKU_NO_TELEMETRY=1\n"
)
REGISTRY = (
    "Error: registry: recipe {dep} not found in registry\n\nSuggestion: Verify the recipe "
    "name is correct. Run 'tsuku recipes' to list available recipes\n\nTo create a recipe "
    "from a package ecosystem:\n  tsuku create {dep} --from <ecosystem>\n\nAvailable "
    "ecosystems: crates.io, rubygems, pypi, npm"
)


def go_line(obj) -> str:
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_queue(obj, escape=True) -> str:
    s = json.dumps(obj, indent=2, ensure_ascii=False)
    if escape:
        s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return s + "\n"


def truncate(msg: str) -> str:
    raw = msg.encode()
    if len(raw) <= 500:
        return msg
    return raw[:500].decode("utf-8", "ignore") + "..."


class Gen:
    def __init__(self, seed: int, packages: int):
        self.r = random.Random(seed)
        ecos = [e for e, w in ECOSYSTEMS for _ in range(w)]
        self.pkgs = []
        for i in range(packages):
            eco = self.r.choice(ecos)
            name = f"pkg{i}" if eco != "github" else f"Owner{i % 97}/tool{i}"
            if eco == "homebrew" and i % 41 == 0:
                name = f"lib{i}@3"
            self.pkgs.append((eco, name))
        self.deps = [f"dep{i}" for i in range(max(20, packages // 8))]

    def message(self, eco: str, name: str) -> tuple[str, str, list[str] | None]:
        kind = self.r.random()
        if kind < 0.35:
            deps = self.r.sample(self.deps, self.r.choice([1, 1, 1, 2, 3]))
            if self.r.random() < 0.4:
                body = (
                    "deterministic generation failed: [missing_dep] missing dependencies: "
                    + "; ".join(f"recipe {d} not found in registry" for d in deps)
                )
            else:
                body = (
                    f"Checking runtime dependencies for {name}...\n  Resolving runtime "
                    f"dependency '{deps[0]}'...\n" + REGISTRY.format(dep=deps[0])
                )
                deps = deps[:1]
            msg = truncate(TELEMETRY * self.r.choice([0, 0, 1]) + body)
            cat = self.r.choice(["missing_dep", "validation_failed", "recipe_not_found"])
            return msg, cat, deps if cat == "missing_dep" and self.r.random() < 0.5 else None
        if kind < 0.5:
            return (
                f"Warning: Skipping recipe review (--yes).\nError: package '{name}' not "
                f"found in {eco}",
                "recipe_not_found",
                None,
            )
        if kind < 0.55:
            return "", "validation_failed", None
        steps = "".join(
            f"   Step {k}/9: download_file\n   Using cached: {name}.tar.gz\n"
            for k in range(self.r.randint(1, 12))
        )
        msg = truncate(
            TELEMETRY + f"Generating plan for {name}@1.0\nInstalling dependency: "
            f"patchelf@0.18.0\n" + steps + "Error: install failed"
        )
        return msg, self.r.choice(LEGACY[:2] + LEGACY[4:]), None

    def record(self, when: datetime) -> dict:
        eco, name = self.r.choice(self.pkgs)
        msg, cat, bb = self.message(eco, name)
        item = {"package_id": f"{eco}:{name}", "category": cat}
        if bb:
            item["blocked_by"] = bb
        item["message"] = msg
        item["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.r.randrange(10**9):09d}Z"
        return item

    def platform_line(self, recipe: str, when: datetime) -> dict:
        code = self.r.choice([6, 6, 6, 6, 8, 124])
        cat = {
            6: "deterministic",
            8: self.r.choice(["deterministic", "missing_dep"]),
            124: "timeout",
        }[code]
        return {
            "schema_version": 1,
            "recipe": recipe,
            "platform": self.r.choice(PLATFORMS),
            "exit_code": code,
            "category": cat,
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def generate(out: Path, records: int, files: int, seed: int) -> dict:
    g = Gen(seed, packages=max(50, records // 12))
    fail = out / "data" / "failures"
    queues = out / "data" / "queues"
    fail.mkdir(parents=True, exist_ok=True)
    queues.mkdir(parents=True, exist_ok=True)
    t = datetime(2026, 1, 31, 18, 0, tzinfo=UTC)
    written = 0
    nfiles = 0
    # the real history (formats.md): 6,355 envelope records in 5,744 one-line files (1.1
    # each, up to 44), and ~500 per-recipe lines in batch-<ts>/homebrew-<ts> files
    b_share = 0.008  # of files: per-recipe line files, 1-20 lines each
    per_file = max(1, records // max(1, files))
    big = files <= 50
    if big:  # few large files: one mixed homebrew.jsonl, one big file per ecosystem family
        names = ["homebrew.jsonl"] + [
            f"{e}-2026-03-0{i % 9 + 1}T00-00-00Z.jsonl" for i, (e, _) in enumerate(ECOSYSTEMS * 2)
        ][: files - 3]
        names += ["batch-2026-03-10T00-00-00Z.jsonl", "batch-2026-03-11T00-00-00Z.jsonl"]
        handles = {n: open(fail / n, "w", encoding="utf-8") for n in names}  # noqa: SIM115
        while written < records:
            t += timedelta(seconds=g.r.randint(5, 600))
            n = g.r.choice(names)
            if n.startswith("batch"):
                handles[n].write(
                    go_line(g.platform_line(g.r.choice(g.pkgs)[1].split("/")[-1], t)) + "\n"
                )
                written += 1
                continue
            eco = "homebrew" if n == "homebrew.jsonl" else n.rsplit("-2026", 1)[0]
            k = min(records - written, g.r.randint(1, 44))
            env = {
                "schema_version": 1,
                "ecosystem": eco,
                "environment": "linux-glibc-x86_64",
                "updated_at": t.strftime(
                    "%Y-%m-%dT%H:%M:%SZ" if n == "homebrew.jsonl" else "%Y-%m-%dT%H-%M-%SZ"
                ),
                "failures": [g.record(t) for _ in range(k)],
            }
            for f in env["failures"]:
                f["package_id"] = f"{eco}:" + f["package_id"].split(":", 1)[1]
            handles[n].write(go_line(env) + "\n")
            written += k
        for h in handles.values():
            h.close()
        nfiles = len(names)
    else:
        mixed = open(fail / "homebrew.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        nfiles = 1
        zero = 0
        mixed_envelopes = 0
        while written < records and nfiles < files:
            t += timedelta(seconds=g.r.randint(60, 900))
            stamp = t.strftime("%Y-%m-%dT%H-%M-%SZ")
            roll = g.r.random()
            if roll < b_share:
                fam = g.r.choice(["homebrew", "batch"])
                path = fail / f"{fam}-{stamp}.jsonl"
                if fam == "batch" and zero < 5 and g.r.random() < 0.05:
                    path.write_bytes(b"")
                    zero += 1
                else:
                    lines = [
                        go_line(g.platform_line(g.r.choice(g.pkgs)[1].split("/")[-1], t))
                        for _ in range(g.r.randint(1, 20))
                    ]
                    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
                    written += len(lines)
                nfiles += 1
                continue
            eco = g.r.choice([e for e, w in ECOSYSTEMS for _ in range(w)])
            # the real shape: 6,355 records in 5,744 envelopes, 1-44 records each
            k = min(
                records - written,
                max(1, int(g.r.expovariate(1 / per_file)))
                if per_file > 1
                else (1 if g.r.random() < 0.975 else g.r.randint(2, 6)),
            )
            items = [g.record(t) for _ in range(k)]
            for f in items:
                f["package_id"] = f"{eco}:" + f["package_id"].split(":", 1)[1]
            env = {
                "schema_version": 1,
                "ecosystem": eco,
                "environment": "linux-glibc-x86_64",
                "updated_at": stamp,
                "failures": items,
            }
            if mixed_envelopes < min(40, files // 100) and eco == "homebrew":  # the mixed file
                mixed_envelopes += 1  # (~180 KB at the real size: 40 envelopes, ~230 lines)
                env["failures"] += [g.record(t) for _ in range(g.r.randint(0, 11))]
                for f in env["failures"]:
                    f["package_id"] = "homebrew:" + f["package_id"].split(":", 1)[1]
                env["updated_at"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
                mixed.write(go_line(env) + "\n")
                for _ in range(g.r.randint(2, 10)):
                    mixed.write(
                        go_line(g.platform_line(g.r.choice(g.pkgs)[1].split("/")[-1], t)) + "\n"
                    )
                    written += 1
                written += len(env["failures"])
                continue
            (fail / f"{eco}-{stamp}.jsonl").write_text(go_line(env) + "\n", encoding="utf-8")
            written += k
            nfiles += 1
        mixed.close()
    entries = []
    seen = set()
    for eco, name in g.pkgs + [("homebrew", d) for d in g.deps]:
        short = name.split("/")[-1]
        if short in seen:
            continue
        seen.add(short)
        entries.append(
            {
                "name": short,
                "source": f"{eco}:{name}",
                "priority": g.r.choice([1, 2, 3]),
                "status": g.r.choice(["pending"] * 6 + ["success"] * 3 + ["failed"]),
                "confidence": "auto",
                "disambiguated_at": None,
                "failure_count": g.r.randint(0, 4),
                "next_retry_at": None,
            }
        )
    (queues / "priority-queue.json").write_text(
        go_queue({"schema_version": 1, "updated_at": "2026-03-03T03:21:03Z", "entries": entries}),
        encoding="utf-8",
    )
    legacy = [
        {
            "id": e["source"],
            "source": "homebrew",
            "name": e["name"],
            "tier": e["priority"],
            "status": e["status"],
            "added_at": "2026-02-07T02:32:02Z",
        }
        for e in entries
        if e["source"].startswith("homebrew:")
    ]
    (queues / "priority-queue-homebrew.json").write_text(
        go_queue(
            {
                "schema_version": 1,
                "updated_at": "2026-02-21T07:20:43Z",
                "tiers": {"1": "Critical", "2": "Popular - >10K weekly downloads", "3": "Standard"},
                "packages": legacy,
            },
            escape=False,
        ),
        encoding="utf-8",
    )
    return {"records": written, "files": nfiles, "queue_entries": len(entries)}


def other_writers(repo: Path, pristine: Path) -> None:
    """A batch: six new v1 failure files, then the queue saved by tsuku's struct (every
    blocked_by dropped, schema_version as read, updated_at now)."""
    names = sorted((pristine / "data" / "failures").iterdir())
    for i, src in enumerate(names[:: max(1, len(names) // 6)][:6]):
        eco = src.name.split("-")[0]
        shutil.copyfile(src, repo / "data" / "failures" / f"{eco}-2099-01-01T0{i}-00-00Z.jsonl")
    q = repo / "data" / "queues" / "priority-queue.json"
    doc = json.loads(q.read_bytes())
    for e in doc["entries"]:
        e.pop("blocked_by", None)
    doc["updated_at"] = "2099-01-01T00:00:00Z"
    q.write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="folder to create (a data repo)")
    ap.add_argument("--records", type=int, default=66000)
    ap.add_argument("--files", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(json.dumps(generate(Path(a.out), a.records, a.files, a.seed)))


if __name__ == "__main__":
    main()
