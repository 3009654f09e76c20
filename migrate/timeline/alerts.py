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
    if inside.empty:
        return []
    runs = inside.groupby("run").agg(
        day=("day", "first"),
        n=("category", "size"),
        categories=("category", "nunique"),
        category=("category", "first"),
    )
    ours = inside[inside["ecosystem"].isin(ecosystems)]
    runs["ecosystems"] = ours.groupby("run")["ecosystem"].nunique().reindex(runs.index)
    hits = runs[(runs["ecosystems"] == len(ecosystems)) & (runs["categories"] == 1)]
    return [
        Alert(
            "every_ecosystem_failed",
            row.day,
            f"run {run}: every ecosystem failed ({len(ecosystems)} of {len(ecosystems)}),"
            f" all {row.category} ({row.n} failures)",
        )
        for run, row in hits.iterrows()
    ]


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
    """One alert per run of rising days (at its last day), when it lasts RISING_DAYS."""
    if "queue:blocked" not in table:
        return []
    blocked = table["queue:blocked"].dropna()
    days, values = list(blocked.index), [int(v) for v in blocked]
    out, start = [], 0
    for i in range(1, len(days) + 1):
        if i < len(days) and values[i] > values[i - 1]:
            continue
        last = i - 1  # (the streak days[start] .. days[last] rose every day)
        if last - start >= RISING_DAYS and since <= days[last] <= until:
            out.append(
                Alert(
                    "blocked_rising",
                    days[last],
                    f"{days[last]}: blocked packages up {last - start} days in a row"
                    f" ({values[start]} on {days[start]} -> {values[last]})",
                )
            )
        start = i
    return out
