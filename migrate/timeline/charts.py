"""The timeline's charts for the HTML report, drawn by matplotlib into SVG (no network at
view time: each chart is a ``data:`` image inside the page).

Three charts: failures per day by category (stacked areas, a step per day), the queue by
status per day (from git history, when there is one), and the period's top signatures per
day.
"""

from __future__ import annotations

import base64
import io

import pandas as pd

from migrate.timeline import Timeline

#: a category's colour, as the report's status colours (unknown ones: matplotlib's cycle)
CATEGORY_COLORS = {
    "missing_dep": "#d9534f",
    "install_failed": "#f0ad4e",
    "generation_failed": "#5bc0de",
    "recipe_not_found": "#9b59b6",
    "validation_failed": "#337ab7",
    "network_error": "#777777",
}


def _figure(title: str, height: float = 3.2):
    import matplotlib

    matplotlib.use("svg")  # (no display, no GUI toolkit)
    matplotlib.rcParams["svg.hashsalt"] = "migrate"  # (the same page for the same data)
    matplotlib.rcParams["svg.fonttype"] = "none"  # (text as text: small, searchable)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.subplots()
    ax.set_title(title, loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _days_axis(ax, index: pd.Index) -> None:
    step = max(1, len(index) // 12)
    ax.set_xticks(range(0, len(index), step), [d[5:] for d in index[::step]], fontsize=8)
    ax.set_xlim(-0.6, len(index) - 0.4)


def failures_by_category(t: Timeline) -> str:
    fig, ax = _figure("Package failures per day, by category")
    cols = [c for c in t.days.columns if c.startswith("category:")]
    names = [c.partition(":")[2] for c in cols]
    if cols:  # (one stacked area per category: a bar per day and category drew 5x slower)
        ax.stackplot(
            range(len(t.days.index)),
            *(t.days[c].to_numpy() for c in cols),
            labels=names,
            colors=[CATEGORY_COLORS.get(n, f"C{i}") for i, n in enumerate(names)],
            step="mid",
        )
    _days_axis(ax, t.days.index)
    if cols:
        ax.legend(fontsize=8, frameon=False, ncols=min(len(cols), 6))
    return _data_uri(fig)


def queue_by_status(t: Timeline) -> str | None:
    """None without a queue history (the records alone)."""
    from migrate.html_report import STATUS_COLORS

    cols = [c for c in t.days.columns if c.startswith("queue:")]
    if not cols or t.days[cols].isna().all().all():
        return None
    fig, ax = _figure("Queue entries per day, by status (the day's last commit)")
    x = range(len(t.days.index))
    for col in cols:
        name = col.partition(":")[2]
        values = t.days[col].astype("float")
        ax.plot(x, values, label=name, color=STATUS_COLORS.get(name), marker=".")
    _days_axis(ax, t.days.index)
    ax.legend(fontsize=8, frameon=False, ncols=min(len(cols), 6))
    return _data_uri(fig)


def top_signatures(t: Timeline, width: int = 110) -> str | None:
    """None when the period has no package failure."""
    daily = t.daily_signatures
    if daily.empty or not len(daily.columns):
        return None
    fig, ax = _figure("Top failure signatures per day", height=4.2)
    text = dict(zip(t.top["id"], t.top["signature"], strict=True))
    x = range(len(daily.index))
    for sid in daily.columns:
        label = f"{sid} {text.get(sid, '')}"
        label = label if len(label) <= width else label[: width - 1] + "…"
        ax.plot(x, daily[sid], label=label, marker=".")
    _days_axis(ax, daily.index)
    fig.legend(fontsize=8, frameon=False, loc="outside lower left")
    return _data_uri(fig)


def charts(t: Timeline) -> list[tuple[str, str]]:
    """(title, data URI) of each chart the timeline has data for."""
    out = [("failures by category", failures_by_category(t))]
    for title, uri in (
        ("queue by status", queue_by_status(t)),
        ("top signatures", top_signatures(t)),
    ):
        if uri is not None:
            out.append((title, uri))
    return out
