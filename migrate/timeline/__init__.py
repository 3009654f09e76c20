"""``migrate timeline``: the pipeline over time, from the records (any version) and, in a
git repository, the queue's daily history.

- :mod:`.signatures`: a failure message reduced to what the failure is;
- :mod:`.history`: the queue as the last commit of each UTC day left it (git);
- :mod:`.alerts`: what an operator must see first, in plain words;
- :mod:`.render`: text, JSON and CSV; :mod:`.charts`: the HTML report's charts.

Days are UTC days. A run is a batch run of the orchestrator: the stamp in an envelope
file's name (``<ecosystem>-<stamp>.jsonl``), or an envelope's ``updated_at`` in the mixed
``homebrew.jsonl``. Per-recipe platform lines (``batch-<stamp>``, ``homebrew-<stamp>``)
validate the recipes of a run on other platforms: they are counted per day as platform
failures, not as runs or package failures (formats.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from migrate import clock
from migrate.failures_index import file_rows
from migrate.parallel import map_files
from migrate.queues import load_queue_docs, name_index
from migrate.reader import Problem
from migrate.store import Store
from migrate.timeline.alerts import Alert, find_alerts
from migrate.timeline.history import History, queue_history
from migrate.timeline.signatures import signature, signature_id

#: days the text view shows by default
DEFAULT_DAYS = 14
_COLUMNS = ("file", "scope", "package_id", "ecosystem", "name", "category", "timestamp", "run")


@dataclass
class Timeline:
    days: pd.DataFrame  # one row per day of the period (see day_table)
    signatures: pd.DataFrame  # one row per signature seen in the period or before it
    top: pd.DataFrame  # the period's signatures by count
    new: pd.DataFrame  # first seen on or after new_since
    stopped: pd.DataFrame  # seen in the as-long period before, not in this one
    daily_signatures: pd.DataFrame  # day x signature id: failures (the top ones)
    alerts: list[Alert]
    since: str
    until: str
    new_since: str
    new_since_from: str  # where new_since comes from
    history: History
    bad_lines: list[Problem] = field(default_factory=list)
    records: int = 0  # package failures over the whole history
    queue_now: dict[str, int] = field(default_factory=dict)  # the working tree's, by status
    #: day -> the packages newly blocked / unblocked that day (names; the table counts them)
    newly_blocked: dict[str, list[str]] = field(default_factory=dict)
    newly_unblocked: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.records == 0 and not self.history.days


def failure_frame(
    store: Store, docs: dict[str, dict], jobs: int = 1
) -> tuple[pd.DataFrame, list[Problem]]:
    """Every failure record (any version) as a row with its day and, for package
    failures, its signature; and the lines that are not failure lines (skipped).
    ``docs``: the repo's queues (:func:`migrate.queues.load_queue_docs`)."""
    names = name_index(docs)

    def rows_of(rel: str):
        rows, problems = file_rows(rel, store.read_bytes(rel), names.get, want=None)
        out = []
        for r in rows:
            row = {k: r[k] for k in _COLUMNS}
            if r["scope"] == "package":
                pid = r["package_id"] or ""
                own = (pid, r["name"], pid.partition(":")[2], r["name"].rsplit("/", 1)[-1])
                row["signature"] = signature(r["message"], own)
            out.append(row)
        return out, problems

    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for found, probs in map_files(rows_of, store.failure_rels(), jobs):
        rows.extend(found)
        problems.extend(probs)
    frame = pd.DataFrame(rows, columns=[*_COLUMNS, "signature"])
    stamp = frame["run"].fillna(frame["timestamp"]).astype(str)
    frame["day"] = stamp.str.slice(0, 10)
    frame["ecosystem"] = frame["ecosystem"].fillna("unknown")
    return frame, problems


def build(
    store: Store,
    since: str | None = None,
    until: str | None = None,
    new_since: str | None = None,
    days: int | None = None,
    jobs: int = 1,
) -> Timeline:
    """The timeline of ``store`` over [since, until] (UTC days, inclusive). Without
    ``since``: the ``days`` days up to ``until`` (all of history when ``days`` is None);
    without ``until``: the last day with a run or a queue commit."""
    docs = load_queue_docs(store)
    frame, problems = failure_frame(store, docs, jobs)
    history = queue_history(store.root)
    blocked, unblocked = newly(history)
    known = sorted(set(frame["day"]) | {d.day for d in history.days})
    until = until or (known[-1] if known else clock.now().date().isoformat())
    if since is None:
        since = known[0] if (days is None and known) else _shift(until, -((days or 1) - 1))
    first = min([since, *known[:1]])
    table = day_table(frame, history, first, until, (blocked, unblocked))
    period = table.loc[since:until]
    new_since, new_from = _new_since(store, new_since, since)
    sigs = signature_table(frame)
    top, new, stopped = _sections(frame, sigs, since, until, new_since)
    return Timeline(
        days=period,
        signatures=sigs,
        top=top,
        new=new,
        stopped=stopped,
        daily_signatures=_daily_signatures(frame, top, since, until),
        alerts=find_alerts(
            frame, table, since, until, clock.now().date().isoformat(), _ecosystems(docs)
        ),
        since=since,
        until=until,
        new_since=new_since,
        new_since_from=new_from,
        history=history,
        bad_lines=problems,
        records=int((frame["scope"] == "package").sum()),
        queue_now=_queue_now(docs),
        newly_blocked=blocked,
        newly_unblocked=unblocked,
    )


def _queue_now(docs: dict[str, dict]) -> dict[str, int]:
    """The queue in the working tree, by status (the unified one, else the legacy ones)."""
    chosen = [d for d in docs.values() if "entries" in d] or [
        d for d in docs.values() if "packages" in d
    ]
    counts: dict[str, int] = {}
    for doc in chosen:
        for e in doc.get("entries", doc.get("packages", [])):
            if isinstance(e, dict) and isinstance(e.get("status"), str):
                counts[e["status"]] = counts.get(e["status"], 0) + 1
    return dict(sorted(counts.items()))


def _ecosystems(docs: dict[str, dict]) -> set[str]:
    """The ecosystems of the pipeline: those of the unified queue's entries."""
    return {
        str(e.get("source", "")).partition(":")[0]
        for doc in docs.values()
        for e in doc.get("entries", [])
        if isinstance(e, dict) and ":" in str(e.get("source", ""))
    }


def _shift(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def _all_days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def day_table(
    frame: pd.DataFrame,
    history: History,
    first: str,
    last: str,
    changed: tuple[dict[str, list[str]], dict[str, list[str]]],
) -> pd.DataFrame:
    """One row per UTC day from ``first`` to ``last``: runs, failures (package), platform
    failures, failures by category (``category:*``) and ecosystem (``ecosystem:*``), and
    from the queue's history: counts by status (``queue:*``, as the day's last commit
    left the queue, carried over days without one), newly blocked and unblocked
    (``changed``: what :func:`newly` says of ``history``)."""
    index = pd.Index(_all_days(first, last), name="day")
    pkg = frame[frame["scope"] == "package"]
    out = pd.DataFrame(index=index)
    out["runs"] = pkg.groupby("day")["run"].nunique()
    out["failures"] = pkg.groupby("day").size()
    out["platform_failures"] = frame[frame["scope"] == "platform"].groupby("day").size()
    for col in ("category", "ecosystem"):
        counts = pd.crosstab(pkg["day"], pkg[col]) if len(pkg) else pd.DataFrame()
        for name in sorted(counts.columns):
            out[f"{col}:{name}"] = counts[name]
    out = out.fillna(0).astype(int)
    _queue_columns(out, history, changed)
    return out


def _queue_columns(out: pd.DataFrame, history: History, changed) -> None:
    statuses = sorted({s for d in history.days for s in d.counts})
    counts = pd.DataFrame(
        [{f"queue:{s}": d.counts.get(s, 0) for s in statuses} for d in history.days],
        index=[d.day for d in history.days],
    )
    counts = counts.reindex(out.index).ffill()  # (a day without a commit keeps the last)
    for col in counts.columns:
        out[col] = counts[col].astype("Int64")
    for col, names in zip(("newly_blocked", "newly_unblocked"), changed, strict=True):
        # (unknown, not 0, on a day without a queue version to compare with the one before)
        values = [len(names[d]) if d in names else None for d in out.index]
        out[col] = pd.array(values, dtype="Int64")


def newly(history: History) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per day with a queue version after the first: the packages blocked in it and not in
    the version before, and the other way round."""
    blocked, unblocked = {}, {}
    for before, after in zip(history.days, history.days[1:], strict=False):
        blocked[after.day] = sorted(after.blocked - before.blocked)
        unblocked[after.day] = sorted(before.blocked - after.blocked)
    return blocked, unblocked


def signature_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per signature over the whole history: count, runs, first and last seen,
    ecosystems and categories affected."""
    pkg = frame[frame["scope"] == "package"]
    cols = ["id", "signature", "count", "runs", "first_seen", "last_seen", "ecosystems"]
    if pkg.empty:
        return pd.DataFrame(columns=[*cols, "categories"])
    g = pkg.groupby("signature")
    sigs = pd.DataFrame(
        {
            "count": g.size(),
            "runs": g["run"].nunique(),
            "first_seen": g["timestamp"].min(),
            "last_seen": g["timestamp"].max(),
            "ecosystems": g["ecosystem"].agg(lambda s: sorted(set(s))),
            "categories": g["category"].agg(lambda s: sorted(set(s))),
        }
    ).reset_index()
    sigs.insert(0, "id", sigs["signature"].map(signature_id))
    return sigs.sort_values(["count", "signature"], ascending=[False, True], ignore_index=True)


def _sections(frame, sigs, since, until, new_since):
    """The period's top signatures, the new ones, the ones that stopped."""
    pkg = frame[frame["scope"] == "package"]
    inside = pkg[(pkg["day"] >= since) & (pkg["day"] <= until)]
    length = (date.fromisoformat(until) - date.fromisoformat(since)).days + 1
    before = pkg[(pkg["day"] >= _shift(since, -length)) & (pkg["day"] < since)]
    by_sig = sigs.set_index("signature")
    top = inside.groupby("signature").size().reset_index(name="in_period")
    top = top.join(by_sig, on="signature").sort_values(
        ["in_period", "signature"], ascending=[False, True], ignore_index=True
    )
    first_day = sigs["first_seen"].astype(str).str.slice(0, 10)
    new = sigs[(first_day >= new_since) & (first_day <= until)].reset_index(drop=True)
    gone = sorted(set(before["signature"]) - set(inside["signature"]))
    stopped = by_sig.loc[gone].reset_index() if gone else sigs.iloc[0:0]
    stopped = stopped.sort_values(
        ["count", "signature"], ascending=[False, True], ignore_index=True
    )
    return top, new, stopped


def _daily_signatures(frame, top, since, until, n: int = 5) -> pd.DataFrame:
    """Failures per day of the period's ``n`` top signatures (columns: their ids)."""
    pkg = frame[(frame["scope"] == "package") & frame["signature"].isin(top["signature"][:n])]
    pkg = pkg[(pkg["day"] >= since) & (pkg["day"] <= until)]
    table = pd.crosstab(pkg["day"], pkg["signature"].map(signature_id)) if len(pkg) else None
    index = pd.Index(_all_days(since, until), name="day")
    if table is None:
        return pd.DataFrame(index=index)
    return table.reindex(index, fill_value=0)


def _new_since(store: Store, given: str | None, since: str) -> tuple[str, str]:
    """The day from which a signature counts as new: given, else the day of migrate's last
    run on this repo (the ledger knows it), else the period's first day."""
    if given:
        return given, "--new-since"
    try:
        from migrate.store.ledger import Ledger

        runs = Ledger.load(store).finished
    except Exception:  # (a ledger that does not load: the period's start; `check` says why)
        runs = []
    if runs:
        return runs[-1].at[:10], f"migrate's last run ({runs[-1].id})"
    return since, "the period's first day"
