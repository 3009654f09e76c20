"""Commands that look at the data: explain, report, export; and schemas, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from migrate.cli.common import described, emit, format_option, from_here, jobs, positive, repo


def cmd_explain(args: argparse.Namespace) -> int:
    from migrate.explain import explain, format_text

    doc = explain(repo(args), args.package_id, recipes=from_here(args.recipes))
    print(json.dumps(doc, indent=2) if args.format == "json" else format_text(doc))
    return 0


def _report_text(r, fmt: str, top: int, store=None) -> str:
    from migrate import report as rp

    if fmt == "json":
        return json.dumps(r.as_dict(), indent=2) + "\n"
    if fmt == "dashboard":
        return json.dumps(rp.format_dashboard(r), indent=2) + "\n"
    if fmt == "csv":
        return rp.format_csv(r)
    if fmt == "html":
        from migrate.html_report import render
        from migrate.timeline import build

        return render(r, top=top, timeline=build(store) if store is not None else None)
    return rp.format_text(r, top=top) + "\n"


def cmd_report(args: argparse.Namespace) -> int:
    from migrate.report import build_report

    store = repo(args)
    text = _report_text(build_report(store, queue=args.queue), args.format, args.top, store)
    return emit(args, text)


def cmd_export(args: argparse.Namespace) -> int:
    from migrate.export import export_frame, to_csv, to_jsonl

    frame = export_frame(repo(args), jobs=jobs(args))
    text = to_csv(frame) if args.format == "csv" else to_jsonl(frame)
    return emit(args, text, f"{len(frame)} records")


def cmd_schemas(args: argparse.Namespace) -> int:
    from migrate.schemas import write_all

    for path in write_all(Path(args.out) if args.out else None):
        print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from migrate.demo import run_demo

    return run_demo(keep=args.keep, out=sys.stdout)


def register_schemas(sub, common, jobs_parser) -> None:
    s = sub.add_parser("schemas", help="regenerate the JSON Schema files from the models")
    s.add_argument("--out", metavar="DIR", help="folder (default: the project's schemas/)")
    s.set_defaults(func=cmd_schemas)


def register(sub, common, jobs_parser) -> None:
    ex = sub.add_parser(
        "explain",
        parents=[common],
        help="why a package has its queue status: records, blockers, evidence, rule",
        **described("", "migrate explain homebrew:node --json"),
    )
    ex.add_argument("package_id", metavar="PACKAGE_ID", help="e.g. homebrew:node")
    format_option(ex, alias=True)
    ex.add_argument("--recipes", metavar="DIR", help="recipes tree (as for up --recipes)")
    ex.set_defaults(func=cmd_explain)
    rp = sub.add_parser(
        "report",
        parents=[common],
        help="queue counts by status and blockers ranked by impact (text/json/csv/html)",
        **described(
            "Reports on the current queue state of a migrated repo: counts by status, by"
            " ecosystem and by tier/priority; blockers (from the records) ranked by how many"
            " packages a recipe would unblock, directly and through chains; where migrate's"
            " own judgement differs from tsuku's rules. The unified queue is used when there"
            " is one (--queue picks another).",
            "migrate report",
            "migrate report --format html --out report.html",
            "migrate report --format dashboard --out website/pipeline/blockers.json",
        ),
    )
    rp.add_argument(
        "--format", choices=["text", "json", "csv", "html", "dashboard"], default="text"
    )
    rp.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    rp.add_argument("--queue", metavar="FILE", help="report on this queue file")
    rp.add_argument(
        "--top", type=positive, default=20, help="blockers in the text table and HTML chart"
    )
    rp.set_defaults(func=cmd_report)
    xp = sub.add_parser(
        "export",
        parents=[common, jobs_parser],
        help="every failure record flat, one row each (CSV or JSON Lines), for analysis",
        **described(
            "Every failure record of every file as one row: file, line, position in its"
            " line, package, scope, platform, category (canonical, legacy name beside it),"
            " blockers and their evidence sources, timestamp, run. Works at any version; the"
            " files themselves keep their shapes.",
            "migrate export --out records.csv",
            "migrate export --format jsonl | jq 'select(.category == \"missing_dep\")'",
        ),
    )
    xp.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    xp.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    xp.set_defaults(func=cmd_export)


def register_demo(sub, common, jobs_parser) -> None:
    d = sub.add_parser(
        "demo",
        help="run the tool on a temporary copy of the bundled sample repo",
        description="Copies the bundled sample data repo to a temporary folder and runs on it.",
    )
    d.add_argument("--keep", action="store_true", help="keep the temporary copy and print its path")
    d.set_defaults(func=cmd_demo)
