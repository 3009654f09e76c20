"""The timeline as text (a terminal), JSON and CSV (machines)."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from migrate.timeline import Timeline

#: rows of each signature section in the text view
TOP = 10


def format_text(t: Timeline, verbose: bool = False) -> str:
    if t.empty:
        return "timeline: no failure record and no queue history: nothing to show\n"
    out = [f"timeline {t.since} .. {t.until} (UTC days)"]
    out += [f"ALERT  {a.text}" for a in t.alerts] or ["no alert"]
    out.append("")
    out += _day_lines(t)
    out += _blocked_lines(t, verbose)
    out.append("")
    out.append(f"queue history: {_history_line(t)}")
    if t.queue_now:
        now = ", ".join(f"{k} {v}" for k, v in t.queue_now.items())
        out.append(f"queue now (working tree): {now}")
    if verbose:
        out += [f"  skipped {s}" for s in t.history.skipped]
    if t.bad_lines:
        out.append(f"{len(t.bad_lines)} line(s) that are not failure lines were skipped")
        out += [f"  {p}" for p in t.bad_lines[: None if verbose else 5]]
    for title, frame, col in (
        (f"top failure signatures, {t.since} .. {t.until}", t.top, "in_period"),
        (f"new since {t.new_since} ({t.new_since_from})", t.new, "count"),
        ("stopped (seen in the as-long period before, not since)", t.stopped, "count"),
    ):
        out += ["", title]
        out += [_sig_line(row, col) for row in frame.head(TOP).itertuples()] or ["  (none)"]
    return "\n".join(out) + "\n"


def _history_line(t: Timeline) -> str:
    h = t.history
    if h.source != "git":
        return h.source
    line = f"{len(h.days)} daily versions from git"
    if h.skipped:
        line += f", {len(h.skipped)} unparseable skipped (named with -v)"
    return line


def _day_lines(t: Timeline) -> list[str]:
    days = t.days
    cats = [c for c in days.columns if c.startswith("category:")]
    ecos = [c for c in days.columns if c.startswith("ecosystem:")]
    header = (
        f"{'day':<10} {'runs':>4} {'fail':>5} {'platf':>5}  {'blocked':>7} {'+blk':>4} {'-blk':>4}"
    )
    lines = [header + "  by category / by ecosystem"]
    for day, row in days.iterrows():
        blocked = row.get("queue:blocked", pd.NA)
        line = (
            f"{day:<10} {row['runs']:>4} {row['failures']:>5} {row['platform_failures']:>5}"
            f"  {_n(blocked):>7} {_n(row['newly_blocked']):>4} {_n(row['newly_unblocked']):>4}"
        )
        parts = [_top_counts(row, cats), _top_counts(row, ecos)]
        lines.append(line + "  " + " / ".join(p for p in parts if p))
    return lines


def _blocked_lines(t: Timeline, verbose: bool, width: int = 8) -> list[str]:
    """The packages newly blocked and unblocked on each day of the period (names)."""
    out = []
    for key in ("newly_blocked", "newly_unblocked"):
        for day, names in sorted(getattr(t, key).items()):
            if names and t.since <= day <= t.until:
                shown = names if verbose else names[:width]
                more = (
                    f" ... (+{len(names) - len(shown)}, -v lists all)"
                    if len(shown) < len(names)
                    else ""
                )
                out.append(
                    f"{day} {key.replace('_', ' ')} ({len(names)}): {', '.join(shown)}{more}"
                )
    return [""] + out if out else []


def _n(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _top_counts(row: pd.Series, cols: list[str]) -> str:
    pairs = sorted(((int(row[c]), c.partition(":")[2]) for c in cols if row[c]), reverse=True)
    return ", ".join(f"{name} {n}" for n, name in pairs)


def _sig_line(row, col: str) -> str:
    first, last = str(row.first_seen)[:10], str(row.last_seen)[:10]
    ecos = ",".join(row.ecosystems)
    return (
        f"  {getattr(row, col):>5}  {row.id}  {row.signature}\n"
        f"         {first}..{last}, {row.runs} runs, {ecos}"
    )


def as_dict(t: Timeline) -> dict[str, Any]:
    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return json.loads(frame.to_json(orient="records"))

    days = []
    for day, row in t.days.iloc[0 : 0 if t.empty else None].iterrows():
        days.append(
            {
                "day": day,
                "runs": int(row["runs"]),
                "failures": int(row["failures"]),
                "platform_failures": int(row["platform_failures"]),
                "by_category": _group(row, "category:"),
                "by_ecosystem": _group(row, "ecosystem:"),
                "queue": _group(row, "queue:", keep_zero=True),
                "newly_blocked": t.newly_blocked.get(day),
                "newly_unblocked": t.newly_unblocked.get(day),
            }
        )
    return {
        "empty": t.empty,  # (no failure record and no queue history: nothing to show)
        "since": t.since,
        "until": t.until,
        "alerts": [a.as_dict() for a in t.alerts],
        "days": days,
        "signatures": {
            "top": records(t.top),
            "new": {"since": t.new_since, "from": t.new_since_from, "items": records(t.new)},
            "stopped": records(t.stopped),
        },
        "queue_now": t.queue_now,
        "queue_history": {
            "source": t.history.source,
            "versions": len(t.history.days),
            "skipped": t.history.skipped,
        },
        "skipped_lines": [str(p) for p in t.bad_lines],
    }


def _group(row: pd.Series, prefix: str, keep_zero: bool = False) -> dict[str, int]:
    out = {}
    for col, value in row.items():
        if col.startswith(prefix) and not pd.isna(value) and (value or keep_zero):
            out[col.removeprefix(prefix)] = int(value)
    return out


def format_json(t: Timeline) -> str:
    return json.dumps(as_dict(t), indent=2, ensure_ascii=False) + "\n"


def format_csv(t: Timeline) -> str:
    """One row per day: every count as a column (``category:*``, ``ecosystem:*``,
    ``queue:*``); the signatures are in the JSON."""
    buf = io.StringIO()
    t.days.iloc[0 : 0 if t.empty else None].to_csv(buf)
    return buf.getvalue()
