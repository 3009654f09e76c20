"""What an operator must see first, in plain words.

- **every ecosystem failed**: a run with package failures in every ecosystem of the
  pipeline (the unified queue's, at least two), all of one category: the pipeline broken,
  not packages (the April 2026 pattern: every run, once per ecosystem, ``install_failed``);
- **one signature behind most failures**: a day on which one signature accounts for more
  than half of at least :data:`MIN_FAILURES` package failures;
- **the pipeline stopped**: :data:`STOP_DAYS` days or more without a run after days with
  runs (resumed since, or still stopped on the period's last day or today);
- **blocked rising**: the queue's blocked count up on each of :data:`RISING_DAYS` days in a
  row (needs the queue's git history).

Each is looked for within the period asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

MIN_FAILURES = 5
STOP_DAYS = 2
RISING_DAYS = 3


@dataclass(frozen=True)
class Alert:
    kind: str  # every_ecosystem_failed, dominant_signature, stopped, blocked_rising
    day: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "day": self.day, "text": self.text}


def find_alerts(
    frame: pd.DataFrame,
    table: pd.DataFrame,
    since: str,
    until: str,
    today: str,
    ecosystems: set[str],
) -> list[Alert]:
    """The alerts of [since, until]: ``frame`` the failure rows (see
    :func:`migrate.timeline.failure_frame`), ``table`` the day table from the first day of
    history (see :func:`migrate.timeline.day_table`), ``ecosystems`` the pipeline's."""
    pkg = frame[frame["scope"] == "package"]
    out = [
        *_every_ecosystem(pkg, since, until, ecosystems),
        *_dominant(pkg, since, until),
        *_stopped(table, since, until, today),
        *_rising(table, since, until),
    ]
    return sorted(out, key=lambda a: (a.day, a.kind))


def _every_ecosystem(
    pkg: pd.DataFrame, since: str, until: str, ecosystems: set[str]
) -> list[Alert]:
    if len(ecosystems) < 2:
        return []
    inside = pkg[(pkg["day"] >= since) & (pkg["day"] <= until)]
    out = []
    for run, group in inside.groupby("run"):
        categories = set(group["category"])
        if set(group["ecosystem"]) >= ecosystems and len(categories) == 1:
            day = group["day"].iloc[0]
            text = (
                f"run {run}: every ecosystem failed ({len(ecosystems)} of"
                f" {len(ecosystems)}), all {categories.pop()} ({len(group)} failures)"
            )
            out.append(Alert("every_ecosystem_failed", day, text))
    return out


def _dominant(pkg: pd.DataFrame, since: str, until: str) -> list[Alert]:
    inside = pkg[(pkg["day"] >= since) & (pkg["day"] <= until)]
    out = []
    for day, group in inside.groupby("day"):
        counts = group["signature"].value_counts()
        if len(group) >= MIN_FAILURES and counts.iloc[0] * 2 > len(group):
            out.append(
                Alert(
                    "dominant_signature",
                    day,
                    f"{day}: one failure behind {counts.iloc[0]} of the day's {len(group)}"
                    f' failures: "{counts.index[0]}"',
                )
            )
    return out


def _stopped(table: pd.DataFrame, since: str, until: str, today: str) -> list[Alert]:
    ran = [d for d, n in table["runs"].items() if n > 0]
    if not ran:
        return []
    out = []
    for before, after in zip(ran, [*ran[1:], None], strict=True):
        end = after or max(until, today)
        gap = (date.fromisoformat(end) - date.fromisoformat(before)).days - (after is not None)
        first_idle = (date.fromisoformat(before) + timedelta(days=1)).isoformat()
        if gap < STOP_DAYS or not (
            since <= first_idle <= until or (after is None and until >= before)
        ):
            continue  # (a stop that lasts to today is said whenever the period holds its last run)
        if after is None:
            text = f"the pipeline stopped: no run since {before} ({gap} days to {end})"
        else:
            text = f"the pipeline stopped from {first_idle} for {gap} days (runs again {after})"
        out.append(Alert("stopped", first_idle, text))
    return out


def _rising(table: pd.DataFrame, since: str, until: str) -> list[Alert]:
    if "queue:blocked" not in table:
        return []
    blocked = table["queue:blocked"].dropna()
    out, streak = [], 0
    for (_, prev), (day, now) in zip(blocked.items(), list(blocked.items())[1:], strict=False):
        streak = streak + 1 if now > prev else 0
        if streak >= RISING_DAYS and since <= day <= until:
            start = blocked.index[blocked.index.get_loc(day) - streak]
            out.append(
                Alert(
                    "blocked_rising",
                    day,
                    f"{day}: blocked packages up {streak} days in a row"
                    f" ({int(blocked[start])} on {start} -> {int(now)})",
                )
            )
    return out
