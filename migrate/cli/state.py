"""Commands that read where the repo stands: check, status, history, verify."""

from __future__ import annotations

import argparse
import json
import sys

from migrate.cli.common import NOTES_SHOWN, described, format_option, jobs, repo


def cmd_check(args: argparse.Namespace) -> int:
    from migrate.check import check_repo, format_github, format_text
    from migrate.progress import progress_for

    report = check_repo(
        repo(args),
        args.paths or None,
        progress=progress_for(args, "check"),
        jobs=jobs(args),
        at_head=args.at_head,
    )
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif args.format == "github":
        print(format_github(report))
    else:
        print(format_text(report, verbose=args.verbose, quiet=args.quiet))
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from migrate.engine import status

    st = status(repo(args), jobs=jobs(args))
    if args.format == "json":
        print(json.dumps(st))
    else:
        print("\n".join(_status_lines(st, args.verbose)))
    behind = st.get("behind", {}).get("files", 0)
    if args.check and (st["pending"] or behind or "unfinished" in st):
        if args.format != "json":
            print("not at head: run `migrate up`", file=sys.stderr)
        return 1
    return 0


def _status_lines(st: dict, verbose: bool) -> list[str]:
    out = [
        f"current: {st['current'] or 'base'}",
        f"head:    {st['head']}",
        f"pending: {', '.join(st['pending']) or 'none'}",
    ]
    if "behind" in st:
        b = st["behind"]
        why = (
            f" ({b['failures']} failure file(s) other writers added or rewrote at v1,"
            f" {b['queues']} queue(s) whose statuses to derive): `migrate up` catches them up"
        )
        out.append(f"behind:  {b['files']} file(s)" + (why if b["files"] else ""))
        if b["others"]:
            out.append(f"         {len(b['others'])} file(s) other writers wrote, at head: no step")
        if verbose:
            out += [f"  {x['path']}  ({x['why']})" for x in [*b["list"], *b["others"]]]
    if "unfinished" in st:
        u = st["unfinished"]
        out.append(
            f"unfinished: run {u['run']} ({u['kind']} to {u['to'] or 'base'}) - the next"
            " `migrate up` or `migrate down` finishes it"
        )
    return out


def cmd_history(args: argparse.Namespace) -> int:
    from migrate.engine import history

    runs = history(repo(args))
    if args.format == "json":
        print(json.dumps([r.header() | {"pending": r.pending} for r in runs], indent=2))
        return 0
    if not runs:
        print("no runs (base)")
    for r in runs:
        changed = ", ".join(f"{sid} {c.get('files_changed', 0)}" for sid, c in r.counts.items())
        print(
            f"{r.id}  {r.kind} {r.from_ or 'base'} -> {r.to or 'base'}"
            f"  ({', '.join(r.steps)})  {r.at}  migrate {r.tool_version}"
            f"  files changed by step: {changed or 'none'}{'  UNFINISHED' if r.pending else ''}"
        )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from migrate.engine import verify

    bad, others = verify(repo(args), jobs=jobs(args))
    if args.format == "json":
        doc = {
            "behind": [{"path": p, "reason": r} for p, r in bad],
            "others": [{"path": p, "reason": r} for p, r in others],
        }
        print(json.dumps(doc, indent=2))
        return 1 if bad else 0
    for path, reason in bad:
        print(f"{path}: {reason}")
    for path, reason in others if args.verbose else others[:NOTES_SHOWN]:
        print(f"{path}: {reason}")
    if len(others) > NOTES_SHOWN and not args.verbose:
        print(f"... and {len(others) - NOTES_SHOWN} more written by others, at head (-v)")
    print(
        f"{len(bad)} file(s) behind head (`migrate up` catches them up)"
        if bad
        else f"ok: at head ({len(others)} file(s) other writers wrote need nothing)"
    )
    return 1 if bad else 0


def register(sub, common, jobs_parser) -> None:
    c = sub.add_parser(
        "check",
        parents=[common, jobs_parser],
        help="validate each line against the schema of its own version (for CI)",
        **described(
            "Validate data/failures/*.jsonl and the queues, each line against the schema of"
            " its own version (v1-as-found or v2); what `migrate up` would write is counted"
            " as behind head (--at-head: a violation). One line per violation,"
            " file:line: field: reason, then a summary.",
            "migrate check",
            "migrate check --format github --at-head",
            "migrate check data/failures/homebrew.jsonl",
        ),
    )
    c.add_argument("paths", nargs="*", metavar="PATH", help="only these files")
    c.add_argument("--format", choices=["text", "json", "github"], default="text")
    c.add_argument(
        "--at-head",
        action="store_true",
        help="fail while anything is behind head: a v1 line, a queue whose statuses the"
        " rules change (CI after `migrate up`)",
    )
    c.set_defaults(func=cmd_check)


def register_status(sub, common, jobs_parser) -> None:
    st = sub.add_parser(
        "status",
        parents=[common, jobs_parser],
        help="current version, head, pending steps, files behind head",
    )
    format_option(st, alias=True)
    st.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when not at head: steps pending, files behind, a run unfinished (CI)",
    )
    st.set_defaults(func=cmd_status)
    h = sub.add_parser("history", parents=[common], help="steps applied, when, by which version")
    format_option(h, alias=True)
    h.set_defaults(func=cmd_history)


def register_verify(sub, common, jobs_parser) -> None:
    v = sub.add_parser(
        "verify",
        parents=[common, jobs_parser],
        help="what is behind head, and which files other writers wrote",
    )
    format_option(v)
    v.set_defaults(func=cmd_verify)
