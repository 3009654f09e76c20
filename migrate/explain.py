"""``migrate explain PACKAGE_ID``: why a package has its queue status, with the evidence.

Shows the package's records newest first (scope, category, blockers, evidence), its queue
entries, each blocker's own queue status, and the rule of :mod:`migrate.status_rules`
that gives the entry its status.
"""

from __future__ import annotations

from typing import Any

from migrate.engine.plan import known_ledger
from migrate.errors import UsageError
from migrate.failures_index import file_rows, latest_package_failures
from migrate.queues import entry_id, load_queue_docs, name_index
from migrate.records import ts_key
from migrate.repo import DataRepo
from migrate.status_rules import decide, recipe_names
from migrate.steps import versions_at


def explain(repo: DataRepo, package_id: str, recipes: str | None = None) -> dict[str, Any]:
    ledger = known_ledger(repo)
    rebuilt = versions_at(ledger.current)["queues"] == 2
    names = name_index(load_queue_docs(repo))
    # an envelope names the package id; a per-recipe line the recipe (which may be the
    # queue's name of a package named otherwise: bat is github:sharkdp/bat)
    needles = {package_id.partition(":")[2]} | {n for n, pid in names.items() if pid == package_id}
    records = []
    for ff in repo.failure_files():
        data = repo.read_bytes(ff.rel)
        if any(n.encode() in data for n in needles):
            rows, _ = file_rows(ff.rel, data, names.get, want=None)  # (at any version)
            records.extend(r for r in rows if r["package_id"] == package_id)
    records.sort(key=lambda r: ts_key(r["timestamp"]), reverse=True)
    latest = latest_package_failures(repo).get(package_id)
    if recipes is None:  # the recipes tree the queues were rebuilt with, as the ledger says
        runs = [r for r in ledger.finished if r.kind == "up" and r.options.get("recipes")]
        recorded = runs[-1].options["recipes"] if runs else None
        # (a folder inside the repo, recorded relative to it; one outside is recorded by
        # name and digest only: pass --recipes to use it)
        recipes = str(repo.path(recorded)) if isinstance(recorded, str) else None
    extra = recipe_names(recipes) if recipes else set()
    queues = []
    for rel, doc in load_queue_docs(repo).items():
        entries = doc.get("entries", doc.get("packages", []))
        by_name: dict[str, list[str]] = {}
        for e in entries:
            by_name.setdefault(e["name"], []).append(e["status"])
        resolved = {n for n, sts in by_name.items() if "success" in sts} | extra
        for e in entries:
            if entry_id(e) != package_id:
                continue
            d = decide(e["status"], latest, resolved)
            names = latest.blocked_by if latest and latest.blocked_by else []
            queues.append(
                {
                    "file": rel,
                    "status": e["status"],
                    "blocked_by": e.get("blocked_by"),
                    "rule": d.rule,
                    "rebuild_agrees": not d.changed(e) if rebuilt else None,
                    "blockers": [
                        {
                            "name": n,
                            "queue_status": by_name.get(n, []),
                            "has_recipe": n in extra,
                            "resolved": n in resolved,
                        }
                        for n in names
                    ],
                }
            )
    if not records and not queues:
        raise UsageError(f"{package_id}: no failure record and no queue entry with that id")
    return {
        "package_id": package_id,
        "version": ledger.current,
        "latest_failure": latest.where if latest else None,
        "queues": queues,
        "records": records,
    }


def format_text(doc: dict[str, Any]) -> str:
    out = [f"{doc['package_id']} (repo at {doc['version'] or 'base'})"]
    if (doc["version"] or "") < "0002":  # (step ids sort as they apply)
        out.append(
            "  (records not backfilled yet: the rule reads them as they are; `migrate up"
            " --dry-run` shows what the steps would change)"
        )
    if not doc["queues"]:
        out.append("  no queue entry with this id")
    for q in doc["queues"]:
        if q["status"] != "blocked":
            bb = ""
        elif q["blocked_by"] is None:
            bb = " by unknown blockers"
        else:
            bb = " by " + ", ".join(q["blocked_by"])
        out.append(f"  {q['file']}: {q['status']}{bb}")
        out.append(f"    rule: {q['rule']}")
        for b in q["blockers"]:
            sts = ", ".join(b["queue_status"]) or "no queue entry"
            mark = "resolved" if b["resolved"] else "unresolved"
            out.append(f"    blocker {b['name']}: {sts} ({mark})")
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
