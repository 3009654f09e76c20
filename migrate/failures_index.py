"""Indexes over the v2 failure records, read in one streaming pass."""

from __future__ import annotations

from migrate import codec
from migrate.reader import split_lines
from migrate.repo import DataRepo
from migrate.status_rules import Latest


def ts_key(ts: str) -> str:
    """Sortable form of an RFC 3339 UTC timestamp with 0-9 fractional digits."""
    base, _, frac = ts.rstrip("Z").partition(".")
    return base.replace("-", "").replace(":", "") + frac.ljust(9, "0")


def latest_package_failures(repo: DataRepo) -> dict[str, Latest]:
    """package_id -> its latest package-scope failure (by timestamp; file order breaks ties).

    Platform-scope records never count: a recipe that failed on one platform after it
    passed elsewhere is not a failed package.
    """
    out: dict[str, Latest] = {}
    for ff in repo.failure_files():
        for lineno, raw in split_lines(repo.read_bytes(ff.rel)):
            if not raw.strip():
                continue
            rec = codec.loads_own(raw)
            if rec.get("scope") != "package" or not rec.get("package_id"):
                continue
            key = ts_key(rec["timestamp"])
            cur = out.get(rec["package_id"])
            if cur is None or key >= cur.ts:
                out[rec["package_id"]] = Latest(
                    key,
                    rec["timestamp"],
                    rec["category"],
                    rec["blocked_by"],
                    f"{ff.rel}:{lineno}",
                )
    return out
