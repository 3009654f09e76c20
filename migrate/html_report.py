"""``migrate report --format html``: one self-contained page (no network), charts in SVG.

Package and blocker names are untrusted data: every value from the data goes through
:func:`html.escape`, and the page's one small script only reads the DOM.
"""

from __future__ import annotations

from html import escape

from migrate.report import Report

STATUS_COLORS = {
    "blocked": "#d9534f",
    "failed": "#f0ad4e",
    "pending": "#5bc0de",
    "success": "#5cb85c",
    "excluded": "#999999",
    "requires_manual": "#9b59b6",
    "skipped": "#bbbbbb",
    "in_progress": "#337ab7",
}

#: No network at all: the page carries everything it needs.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}svg text{font:12px system-ui,sans-serif}
input{margin:6px 0;padding:4px;width:260px}
"""

SCRIPT = """
(function(){
  var box=document.getElementById('filter');
  var rows=document.querySelectorAll('#blockers tbody tr');
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});
  });
  document.body.setAttribute('data-ready','1');
  window.addEventListener('load',function(){
    var ok=0;document.querySelectorAll('img.chart').forEach(function(i){
      if(i.complete&&i.naturalWidth>0){ok++;}});
    document.body.setAttribute('data-charts-drawn',String(ok));
  });
})();
"""


def _bars(items: list[tuple[str, int, str]], width: int = 760, label_w: int = 220) -> str:
    """Horizontal bar chart as inline SVG; labels escaped."""
    if not items:
        return '<p class="muted">nothing to show</p>'
    peak = max(v for _, v, _ in items) or 1
    row = 22
    h = row * len(items) + 6
    parts = [f'<svg role="img" width="{width}" height="{h}" viewBox="0 0 {width} {h}">']
    for i, (label, value, color) in enumerate(items):
        y = i * row + 3
        w = max(1, int((width - label_w - 60) * value / peak))
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{row - 6}" fill="{color}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + w + 6}" y="{y + 14}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline_section(t) -> str:
    """The pipeline over time (migrate.timeline): alerts, then matplotlib's charts."""
    if t is None:
        return ""
    from migrate.timeline.charts import charts

    alerts = "".join(f"<li>{escape(a.text)}</li>" for a in t.alerts)
    images = "".join(
        f'<p><img class="chart" data-chart="{escape(title)}" alt="{escape(title)}"'
        f' src="{uri}" style="max-width:100%"></p>'
        for title, uri in charts(t)
    )
    return (
        f"<h2>The pipeline over time ({escape(t.since)} .. {escape(t.until)}, UTC)</h2>"
        f'<ul id="alerts">{alerts or "<li class=muted>no alert</li>"}</ul>{images}'
    )


def render(r: Report, top: int = 25, timeline=None) -> str:
    status_items = [(s, n, STATUS_COLORS.get(s, "#777")) for s, n in r.by_status.items()]
    blocker_items = [(b["name"], b["total_count"], "#d9534f") for b in r.blockers[:top]]
    rows = "".join(
        f"<tr><td>{escape(b['name'])}</td><td class=n>{b['total_count']}</td>"
        f"<td class=n>{b['direct_count']}</td><td>{escape(b['status'])}</td>"
        f"<td>{escape(', '.join(b['packages']))}"
        + (
            ' <span class="muted">(+ through a chain: '
            + escape(", ".join(b["transitive_packages"]))
            + ")"
            "</span>"
            if b["transitive_packages"]
            else ""
        )
        + "</td></tr>"
        for b in r.blockers
    )
    eco_rows = "".join(
        f"<tr><td>{escape(eco)}</td><td>"
        + escape(", ".join(f"{s} {n}" for s, n in counts.items()))
        + "</td></tr>"
        for eco, counts in r.by_ecosystem.items()
    )

    def lst(items: list[str]) -> str:
        return escape(", ".join(items)) if items else '<span class="muted">none</span>'

    top_name = escape(r.blockers[0]["name"]) if r.blockers else "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>tsuku queue: blockers and status</title><style>{CSS}</style>
<script>window.addEventListener("error",function(e){{var d=document.documentElement;
d.setAttribute("data-errors",(d.getAttribute("data-errors")||"")+e.message+";");}});</script>
</head>
<body>
<h1>tsuku batch queue — blockers and status</h1>
<p class="muted">{escape(", ".join(r.queues))} at step {escape(str(r.version))};
{r.entries} entries; generated {escape(r.generated_at)}</p>
<p>Top blocker: <strong id="top-blocker">{top_name}</strong></p>
<h2>Queue by status</h2>
{_bars(status_items)}
{_timeline_section(timeline)}
<h2>Top blockers, by packages a recipe would unblock (directly or through a chain)</h2>
{_bars(blocker_items)}
<h2>All blockers ({len(r.blockers)})</h2>
<input id="filter" type="search" placeholder="filter blockers or packages">
<table id="blockers"><thead><tr><th>blocker</th><th>total</th><th>direct</th>
<th>its own status</th><th>blocks</th></tr></thead><tbody>{rows}</tbody></table>
<h2>By ecosystem</h2><table>{eco_rows}</table>
<h2>Blocked, blockers unknown ({len(r.unknown_blockers)})</h2><p>{lst(r.unknown_blockers)}</p>
<h2>Failures with no queue entry ({len(r.failures_without_entry)})</h2>
<p>{lst(r.failures_without_entry)}</p>
<script>{SCRIPT}</script>
</body></html>
"""
