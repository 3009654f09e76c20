"""``migrate timeline``: the pipeline over time (migrate.timeline)."""

from __future__ import annotations

import argparse
from datetime import date

from migrate.cli.common import described, emit, jobs, positive, repo
from migrate.errors import UsageError


def day(value: str) -> str:
    """A UTC day, ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def cmd_timeline(args: argparse.Namespace) -> int:
    from migrate.timeline import DEFAULT_DAYS, build
    from migrate.timeline.render import format_csv, format_json, format_text

    if args.since and args.until and args.since > args.until:
        raise UsageError(f"--since {args.since} is after --until {args.until}")
    days = args.days or (DEFAULT_DAYS if args.format == "text" else None)
    t = build(repo(args), args.since, args.until, args.new_since, days, jobs(args))
    if args.format == "json":
        text = format_json(t)
    elif args.format == "csv":
        text = format_csv(t)
    else:
        text = format_text(t, verbose=args.verbose)
    return emit(args, text)


def register(sub, common, jobs_parser) -> None:
    tl = sub.add_parser(
        "timeline",
        parents=[common, jobs_parser],
        help="the pipeline over time: runs, failures, signatures, blocked; alerts first",
        **described(
            "Per UTC day: batch runs, package failures by category and ecosystem, platform"
            " failures, and (when the data repo is in git) the queue by status with the"
            " packages newly blocked and unblocked, from the last commit of each day."
            " Failure messages are reduced to signatures: the top ones of the period, the"
            " new ones (since --new-since, else migrate's last run) and the ones that"
            " stopped. Alerts come first: a run in which every ecosystem failed, a"
            " signature behind most of a day's failures, the pipeline stopped, blocked"
            " rising. Text shows the last 14 days by default; JSON and CSV all of history.",
            "migrate timeline",
            "migrate timeline --since 2026-03-01 --until 2026-03-31",
            "migrate timeline --format csv --out timeline.csv",
        ),
    )
    tl.add_argument("--since", type=day, metavar="DAY", help="first day (YYYY-MM-DD, UTC)")
    tl.add_argument(
        "--until", type=day, metavar="DAY", help="last day (default: the last day with data)"
    )
    tl.add_argument(
        "--days", type=positive, metavar="N", help="the N days up to --until (text: 14)"
    )
    tl.add_argument(
        "--new-since", type=day, metavar="DAY", help="signatures first seen from DAY are new"
    )
    tl.add_argument("--format", choices=["text", "json", "csv"], default="text")
    tl.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    tl.set_defaults(func=cmd_timeline)
