"""Reading the ledgers older migrates wrote: format 2 (migrate 0.3) into format 3 records.

A format 2 run file holds, per file it wrote or looked at, the file's *whole* state:
the checksum of its bytes before any step (``origin``), the steps applied with the
checksum each left (``after``) and the patch its ``down`` needs (or the whole bytes
before it, ``restore``). The translation keeps what format 3 keeps (the steps that
changed the file and their patches) and marks the record ``full`` (it replaces what
earlier runs said, as format 2 meant). It also keeps the checksum of the bytes the tool
left, which format 3 never records: a rollback of a repo migrated by 0.3 still tells a
file another writer replaced since (left as they wrote it) from the tool's own.

Line patches (steps 0001 and 0002) have the same form in both formats. The queue step's
patch of format 2 (migrate 0.3 wrote ``blocked_by`` into the queue, and moved its
``schema_version`` to 2) becomes a change set of format 3 (:func:`queue_changes`).
"""

from __future__ import annotations

from typing import Any


def records_of_format2(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for obj in objs:
        if obj.get("gone"):
            out.append({"path": obj["path"], "gone": True})
            continue
        cur = obj["origin"]
        steps, patches = [], {}
        for st in obj["steps"]:
            given = st.get("before") or cur
            left = st.get("after") or given
            if left != given or st.get("restore") is not None:  # (a step that changed it)
                steps.append(st["id"])
                patch = st.get("patch")
                if st["id"] == "0003" and patch is not None:
                    patch = queue_changes(patch)
                if st.get("restore") is not None:
                    patch = {**(patch or {}), "restore": st["restore"]}
                if patch is not None:
                    patches[st["id"]] = patch
            cur = left
        rec: dict[str, Any] = {"path": obj["path"], "steps": steps, "full": True, "after": cur}
        if patches:
            rec["patch"] = patches
        out.append(rec)
    return out


_ABSENT = object()


def queue_changes(patch: dict[str, Any]) -> dict[str, Any]:
    """Migrate 0.3's queue patch as a change set of format 3 (see ``QueueStatus``): each
    entry it changed, by id, with the status and ``blocked_by`` before and after, and the
    header's ``updated_at`` and ``schema_version`` before and after. A patch of migrate 0.2
    or older did not record the values it set (no ``now``): it keeps what it has, keyed by
    the entries' positions, for an exact rollback of bytes nobody touched since."""
    header = {}
    now = patch.get("now")
    after_updated = now["updated_at"] if now else None
    header["updated_at"] = [patch["updated_at"], after_updated]
    header["schema_version"] = [patch["schema_version"], 2]
    out: dict[str, Any] = {"header": header}
    if now is None:
        out["unrecorded"] = {
            "status": patch.get("status", {}),
            "blocked_by": patch.get("blocked_by", {}),
        }
        return out
    entries = []
    prior = patch.get("blocked_by", {})
    for i, new in sorted(now["entries"].items(), key=lambda kv: int(kv[0])):
        e: dict[str, Any] = {"id": new["id"]}
        was = patch.get("status", {}).get(i, new["status"])
        if was != new["status"]:
            e["status"] = [was, new["status"]]
        bb: dict[str, Any] = {}
        if i in prior:
            bb["before"] = prior[i]
        if "blocked_by" in new:
            bb["after"] = new["blocked_by"]
        if bb:
            e["blocked_by"] = bb
        entries.append(e)
    out["entries"] = entries
    return out
