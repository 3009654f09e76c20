"""Reports on the current queue state: counts by status, and blockers ranked by impact.

Computed with pandas from the queue as it is now (its statuses), and for each blocked
entry its unresolved blockers over every record of its name (the queue keeps no
blockers: step 0003 and tsuku's queue-maintain read them from the records). Not from the
failure history alone, which is what kept resolved blockers on the old dashboard.
``total_count`` counts each package blocked by a name directly or through a chain once,
even through diamonds; cycles terminate. A section lists where the tool's own judgement
differs from tsuku's rules.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from migrate import clock, codec
from migrate.engine.plan import known_ledger
from migrate.errors import UsageError
from migrate.failures_index import latest_package_failures
from migrate.queues import entry_id
from migrate.reader import queue_kind
from migrate.store import Store


@dataclass
class Report:
    generated_at: str
    version: str | None
    queues: list[str]
    entries: int
    by_status: dict[str, int]
    by_ecosystem: dict[str, dict[str, int]]
    by_priority: dict[str, dict[str, int]]
    priority_field: str
    blockers: list[dict[str, Any]]
    unknown_blockers: list[str]
    failures_without_entry: list[str]
    findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "version": self.version,
            "queues": self.queues,
            "entries": self.entries,
            "by_status": self.by_status,
            "by_ecosystem_status": self.by_ecosystem,
            f"by_{self.priority_field}_status": self.by_priority,
            "blockers": self.blockers,
            "blocked_unknown_blockers": self.unknown_blockers,
            "failures_without_queue_entry": self.failures_without_entry,
            "judgement_differs": self.findings,
        }


def choose_queues(repo: Store, queue: str | None) -> list[tuple[str, dict]]:
    """The queue(s) that hold the current state: ``--queue`` if given, else the unified
    queue, else the legacy ones (the legacy homebrew queue is stale once a unified exists)."""
    docs = []
    for rel in repo.queue_files():
        try:
            obj = codec.loads(repo.read_bytes(rel))
            kind = queue_kind(obj)
        except (codec.DecodeError, ValueError) as exc:
            raise UsageError(
                f"{rel}: unreadable queue ({exc})", hint="run `migrate check`"
            ) from None
        if kind in ("legacy", "unified"):
            docs.append((rel, kind, obj))
    if queue:
        chosen = [(r, o) for r, _, o in docs if r == queue or r.endswith("/" + queue)]
        if not chosen:
            raise UsageError(f"{queue}: no such queue", hint=f"queues: {[r for r, _, _ in docs]}")
        return chosen
    unified = [(r, o) for r, k, o in docs if k == "unified"]
    return unified or [(r, o) for r, k, o in docs if k == "legacy"]


def queue_frame(
    chosen: list[tuple[str, dict]], blocked_by: dict[tuple[str, str], list[str] | None]
) -> pd.DataFrame:
    """One row per entry; ``blocked_by``: (queue, package id) -> a blocked entry's
    unresolved blockers (None: no record names any)."""
    rows = []
    for rel, doc in chosen:
        legacy = "packages" in doc
        for e in doc["packages"] if legacy else doc["entries"]:
            pid = entry_id(e)
            rows.append(
                {
                    "queue": rel,
                    "package_id": pid,
                    "name": e["name"],
                    "ecosystem": e["source"] if legacy else pid.partition(":")[0],
                    "status": e["status"],
                    "priority": e.get("tier", e.get("priority")),
                    "blocked_by": blocked_by.get((rel, pid)),
                }
            )
    cols = ["queue", "package_id", "name", "ecosystem", "status", "priority", "blocked_by"]
    return pd.DataFrame(rows, columns=cols)


def rank_blockers(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Blockers of the blocked entries, ranked by total (transitive) impact."""
    blocked = df[(df["status"] == "blocked") & df["blocked_by"].map(lambda b: isinstance(b, list))]
    edges = blocked[["package_id", "name", "blocked_by"]].explode("blocked_by").dropna()
    direct: dict[str, list[str]] = defaultdict(list)  # blocker name -> blocked package ids
    for blocker, pid in zip(edges["blocked_by"], edges["package_id"], strict=True):
        if pid not in direct[blocker]:
            direct[blocker].append(pid)
    names_of = dict(zip(df["package_id"], df["name"], strict=True))
    ids_named: dict[str, set[str]] = defaultdict(set)
    for pid, name in names_of.items():
        ids_named[name].add(pid)
    status_of = df.groupby("name")["status"].agg(lambda s: sorted(set(s))).to_dict()
    out = []
    for blocker, pids in direct.items():
        seen: set[str] = set()
        todo = deque(pids)
        while todo:
            pid = todo.popleft()
            if pid in seen:
                continue
            seen.add(pid)
            todo.extend(direct.get(names_of.get(pid, ""), []))
        seen -= ids_named.get(blocker, set())  # through a cycle: nobody unblocks itself
        out.append(
            {
                "name": blocker,
                "direct_count": len(pids),
                "total_count": len(seen),
                "status": ", ".join(status_of.get(blocker, [])) or "no queue entry",
                "packages": sorted(pids),
                "transitive_packages": sorted(seen - set(pids)),
            }
        )
    out.sort(key=lambda b: (-b["total_count"], -b["direct_count"], b["name"]))
    return out


def _crosstab(df: pd.DataFrame, index: str) -> dict[str, dict[str, int]]:
    if df.empty:
        return {}
    tab = pd.crosstab(df[index].astype(str), df["status"])
    return {str(k): {s: int(v) for s, v in row.items() if v} for k, row in tab.iterrows()}


def build_report(repo: Store, queue: str | None = None) -> Report:
    from migrate.steps import REGISTRY
    from migrate.views import queue_views

    ledger = known_ledger(repo)
    derived = next(s for s in REGISTRY if s.derived)
    if REGISTRY.pos(ledger.current) < REGISTRY.pos(derived.id):
        raise UsageError(
            f"the repo is at {ledger.current or 'base'}: reports read derived queues"
            f" ({derived.id})",
            hint="run `migrate up` first (on a copy, to only look)",
        )
    chosen = choose_queues(repo, queue)
    views = queue_views(repo)
    blocked_by = {
        (rel, v.package_id): [n for n in v.blockers if n not in v.resolved.tsuku] or None
        for rel, vs in views.queues.items()
        for v in vs
        if v.status == "blocked"
    }
    df = queue_frame(chosen, blocked_by)
    latest = latest_package_failures(repo)
    unknown = df[(df["status"] == "blocked") & df["blocked_by"].isna()]["package_id"]
    ids = set(df["package_id"])
    is_legacy = any("packages" in doc for _, doc in chosen)
    wanted = {rel for rel, _ in chosen}
    return Report(
        generated_at=clock.now_iso(),
        version=ledger.current,
        queues=[rel for rel, _ in chosen],
        entries=len(df),
        by_status={str(k): int(v) for k, v in df["status"].value_counts().sort_index().items()},
        by_ecosystem=_crosstab(df, "ecosystem"),
        by_priority=_crosstab(df, "priority"),
        priority_field="tier" if is_legacy else "priority",
        blockers=rank_blockers(df),
        unknown_blockers=sorted(unknown),
        failures_without_entry=sorted(pid for pid in latest if pid not in ids),
        findings=[f.as_dict() for f in views.findings if f.queue in wanted],
    )


# ------------------------------------------------------------------------------ formats


def format_text(r: Report, top: int = 20) -> str:
    out = [f"queue state at {r.version} ({', '.join(r.queues)}): {r.entries} entries", ""]
    width = max([len(s) for s in r.by_status] + [6])
    out.append(f"{'status':<{width}}  count")
    out += [f"{s:<{width}}  {n:>5}" for s, n in r.by_status.items()]
    out += ["", f"top blockers (of {len(r.blockers)}), by packages unblocked:"]
    if r.blockers[:top]:
        nw = max(len(b["name"]) for b in r.blockers[:top])
        out.append(f"  {'blocker':<{nw}}  total  direct  own status       blocks")
        for b in r.blockers[:top]:
            blocks = ", ".join(b["packages"][:4]) + (" ..." if len(b["packages"]) > 4 else "")
            out.append(
                f"  {b['name']:<{nw}}  {b['total_count']:>5}  {b['direct_count']:>6}"
                f"  {b['status']:<15}  {blocks}"
            )
    out += ["", "by ecosystem and status:"]
    for eco, counts in r.by_ecosystem.items():
        out.append(f"  {eco:<10} " + "  ".join(f"{s} {n}" for s, n in counts.items()))
    out += ["", f"by {r.priority_field} and status:"]
    for p, counts in r.by_priority.items():
        out.append(f"  {p:<10} " + "  ".join(f"{s} {n}" for s, n in counts.items()))
    out += [
        "",
        f"blocked, blockers unknown ({len(r.unknown_blockers)}): "
        + (", ".join(r.unknown_blockers[:10]) or "none"),
    ]
    out.append(
        f"failures with no queue entry ({len(r.failures_without_entry)}): "
        + (", ".join(r.failures_without_entry[:10]) or "none")
        + (" ..." if len(r.failures_without_entry) > 10 else "")
    )
    out += ["", f"where migrate's own judgement differs from tsuku's rules ({len(r.findings)}):"]
    for f in r.findings[:top]:
        out.append(
            f"  {f['package_id']}: {f['status']} by tsuku's rules, {f['judged']} by"
            f" migrate's ({f['kind']})"
        )
    if len(r.findings) > top:
        out.append(f"  ... and {len(r.findings) - top} more (--format json lists them all)")
    return "\n".join(out)


def format_csv(r: Report) -> str:
    rows = [
        {
            **{k: b[k] for k in ("name", "direct_count", "total_count", "status")},
            "packages": " ".join(b["packages"]),
            "transitive_packages": " ".join(b["transitive_packages"]),
        }
        for b in r.blockers
    ]
    cols = ["name", "direct_count", "total_count", "status", "packages", "transitive_packages"]
    return pd.DataFrame(rows, columns=cols).to_csv(index=False)


def format_dashboard(r: Report) -> dict[str, Any]:
    """The ``blockers`` section in the shape of upstream ``website/pipeline/dashboard.json``.

    ``count`` is the ranking value, ``total_count`` (packages a recipe for the blocker would
    unblock, directly or through a chain); ``direct_count`` is kept beside it.
    """
    return {
        "generated_at": r.generated_at,
        "blockers": [
            {
                "name": b["name"],
                "count": b["total_count"],
                "direct_count": b["direct_count"],
                "total_count": b["total_count"],
                "packages": b["packages"],
            }
            for b in r.blockers
        ],
    }
