"""``migrate explain PACKAGE_ID``: why a package has its queue status, with the evidence.

Shows the package's records newest first (scope, category, blockers, evidence), then each
queue entry with its status and the rule that keeps or gives it (tsuku's rules, as step
0003 derives them: the blockers over every record of the entry's name, each with its own
queue status) and, where the tool's own judgement (the latest record of the exact id)
differs, that judgement and its reason too.
"""

from __future__ import annotations

from typing import Any

from migrate.errors import UsageError
from migrate.failures_index import file_rows
from migrate.queues import load_queue_docs, name_index
from migrate.records import ts_key
from migrate.store import Store
from migrate.views import queue_views


def explain(repo: Store, package_id: str, recipes: str | None = None) -> dict[str, Any]:
    views = queue_views(repo, recipes=recipes)
    names = name_index(load_queue_docs(repo))
    # an envelope names the package id; a per-recipe line the recipe (which may be the
    # queue's name of a package named otherwise: bat is github:sharkdp/bat)
    needles = {package_id.partition(":")[2]} | {n for n, pid in names.items() if pid == package_id}
    records = []
    for rel in repo.failure_rels():
        data = repo.read_bytes(rel)
        if any(n.encode() in data for n in needles):
            rows, _ = file_rows(rel, data, names.get, want=None)  # (at any version)
            records.extend(r for r in rows if r["package_id"] == package_id)
    records.sort(key=lambda r: ts_key(r["timestamp"]), reverse=True)
    status_of: dict[str, list[str]] = {}
    queues = []
    for rel, verdicts in views.queues.items():
        by_name: dict[str, list[str]] = {}
        for v in verdicts:
            by_name.setdefault(v.name, []).append(v.status)
        for v in verdicts:
            if v.package_id != package_id:
                continue
            status_of = by_name
            queues.append(
                {
                    "file": rel,
                    "status": v.status,
                    "rule": v.decision.rule,
                    "derived": v.decision.status,
                    "judgement": {"status": v.judged.status, "rule": v.judged.rule},
                    "differs": v.finding.kind if v.finding else None,
                    "records_of_name": list(v.finding.records) if v.finding else [],
                    "blockers": [
                        {
                            "name": n,
                            "queue_status": status_of.get(n, []),
                            "resolved": n in v.resolved.tsuku,
                            "resolved_by_migrate": n in v.resolved.tool,
                        }
                        for n in v.blockers
                    ],
                }
            )
    if not records and not queues:
        raise UsageError(f"{package_id}: no failure record and no queue entry with that id")
    return {
        "package_id": package_id,
        "version": views.version,
        "recipes": views.recipes,
        "queues": queues,
        "records": records,
    }


def format_text(doc: dict[str, Any]) -> str:
    out = [f"{doc['package_id']} (repo at {doc['version'] or 'base'})"]
    if doc["version"] is None or doc["version"] < "0002":
        out.append(
            "  (records not backfilled yet: the rules read them as they are; `migrate up"
            " --dry-run` shows what the steps would change)"
        )
    if not doc["queues"]:
        out.append("  no queue entry with this id")
    for q in doc["queues"]:
        out.append(f"  {q['file']}: {q['status']}")
        if q["derived"] != q["status"]:
            out.append(f"    step 0003 would set: {q['derived']} (`migrate up`)")
        out.append(f"    tsuku's rules: {q['rule']}")
        if q["differs"]:
            j = q["judgement"]
            out.append(f"    migrate's own judgement differs: {j['status']}: {j['rule']}")
            out.append(f"      ({q['differs']}; records of ids {', '.join(q['records_of_name'])})")
        for b in q["blockers"]:
            sts = ", ".join(b["queue_status"]) or "no queue entry"
            mark = "resolved" if b["resolved"] else "unresolved"
            if b["resolved_by_migrate"] and not b["resolved"]:
                mark += " (a recipe provides it, which tsuku's requeue does not read)"
            out.append(f"    blocker {b['name']}: {sts} ({mark})")
    if doc["recipes"]:
        out.append(f"  recipes tree: {doc['recipes']}")
    out.append(f"  records, newest first ({len(doc['records'])}):")
    for r in doc["records"]:
        cat = r["category"] + (f" (was {r['reclassified_from']})" if r["reclassified_from"] else "")
        platform = r["platform"] or "-"
        bb = "unknown" if r["blocked_by"] is None else (", ".join(r["blocked_by"]) or "none")
        out.append(
            f"    {r['timestamp']}  {r['scope']:8} {platform:26} {cat}  blockers: {bb}"
            f"  [{r['file']}:{r['line']}]"
        )
        for ev in r["evidence"]:
            where = f"{ev['file']}:{ev['line']}" if ev.get("line") else ev.get("file") or ""
            names = ", ".join(ev["names"]) or "none missing"
            out.append(f"      evidence {ev['source']}: {names} <- {ev['detail'][:120]} [{where}]")
    return "\n".join(out)
