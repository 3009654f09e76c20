"""Command line: parses arguments, calls the library, prints. No logic lives here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from migrate import __version__
from migrate.errors import BadInputError, DataChanged, MigrateError, StepBug, UsageError
from migrate.store import Store

EPILOG = """\
exit codes: 0 ok, 1 violations / files behind head / others' files found, 2 usage, I/O
or bad input, 3 lock held, 4 ledger/version problem, 5 a down that would overwrite another
writer's values (or an interrupted run that cannot be finished), 6 a bug in a step
"""


SUP = argparse.SUPPRESS


def _format_option(parser: argparse.ArgumentParser, alias: bool = False) -> None:
    """``--format text|json`` (``--json``: the same as ``--format json``, where it was)."""
    parser.add_argument("--format", choices=["text", "json"], default="text")
    if alias:
        parser.add_argument(
            "--json", dest="format", action="store_const", const="json", help="--format json"
        )


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return n


def _from_here(path: str | None) -> str | None:
    """A path given on the command line, relative to the current folder (not the repo's
    root, which --repo or the search upwards may have chosen)."""
    return os.path.abspath(path) if path else path


def _repo(args: argparse.Namespace) -> Store:
    """``--repo DIR``, else the repo around the current folder (found as git finds its
    root: the nearest folder upwards holding ``data/``)."""
    if args.repo:
        return Store(args.repo)
    try:
        here = Path.cwd()
    except FileNotFoundError:
        raise UsageError(
            "the current folder no longer exists", hint="cd into a data repo"
        ) from None
    for folder in (here, *here.parents):
        if (folder / "data" / "failures").is_dir() or (folder / "data" / "queues").is_dir():
            return Store(folder)
    return Store(here)  # (names the problem: no data/ folder)


def cmd_check(args: argparse.Namespace) -> int:
    from migrate.check import check_repo, format_github, format_text
    from migrate.progress import progress_for

    repo = _repo(args)
    report = check_repo(
        repo,
        args.paths or None,
        progress=progress_for(args, "check"),
        jobs=max(1, args.jobs),
        at_head=args.at_head,
    )
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    elif args.format == "github":
        print(format_github(report))
    else:
        print(format_text(report, verbose=args.verbose, quiet=args.quiet))
    return 0 if report.ok else 1


NOTES_SHOWN = 5  # examples per step in the default summary (-v: all)


def _run_dict(run) -> dict:
    """A run's report as JSON (``--format json``): everything, nothing cut."""
    return {
        "direction": run.plan.direction,
        "dry_run": run.dry_run,
        "from": run.plan.current,
        "to": run.plan.target,
        "plan": run.plan.describe(),
        "settled": run.settled,
        "steps": [
            {
                "id": sr.step.id,
                "name": sr.step.name,
                "files_read": sr.files_read,
                "files_changed": sr.changed_files,
                "changes": dict(sorted(sr.totals.items())),
                "notes": sr.notes,
            }
            for sr in run.steps
        ],
        "files": [{"path": path, **({"diff": diff} if diff else {})} for path, diff in run.files],
        "rules": dict(run.rules),
        "rule_files": [{"path": p, "rule": r, "counts": c} for p, r, c in run.rule_files],
        "refused": run.refused,
        "theirs": run.theirs,
        "run": run.run_id,
        "seconds": round(run.seconds, 3),
    }


def _final_line(run) -> str:
    """The one line every command that writes ends with: where the repo is."""
    where = run.plan.target or "base"
    if run.refused:
        return (
            f"a down would stop here: {len(run.refused)} file(s) cannot be reverted without"
            " overwriting another writer's values; nothing would be reverted"
        )
    if not run.plan.steps:
        return run.plan.describe()[0]
    if run.dry_run:
        return f"dry run: nothing written; the repo stays at {run.plan.current or 'base'}"
    return f"now at {where} ({run.seconds:.2f}s)"


def _print_run(run, args, out=None) -> None:
    """A short summary by default: the plan, per step its file counts, its changes by
    kind and the first few examples; ``-v`` every example and file, ``-q`` the final line
    only (errors go to stderr whatever the level)."""
    out = out or sys.stdout
    if getattr(args, "format", "text") == "json":
        print(json.dumps(_run_dict(run) | {"final": _final_line(run)}, indent=2), file=out)
        return
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    for reason in run.refused:
        print(f"refused: {reason}", file=sys.stderr)
    if quiet:
        print(_final_line(run), file=out)
        return
    head = "dry run: " if run.dry_run else ""
    if run.settled:
        print(run.settled, file=out)
    if run.plan.steps:
        for line in run.plan.describe():
            print(head + line, file=out)
    for sr in run.steps:
        verb = "would change" if run.dry_run else "changed"
        print(
            f"{sr.step.id} {sr.step.name}: {verb} {sr.changed_files} of {sr.files_read} files",
            file=out,
        )
        for key, n in sorted(sr.totals.items()):
            print(f"  {key}: {n}", file=out)
        shown = sr.notes if verbose else sr.notes[:NOTES_SHOWN]
        for note in shown:
            print(f"  {note}", file=out)
        if len(shown) < len(sr.notes):
            print(
                f"  ... and {len(sr.notes) - len(shown)} more"
                f" (-v lists them all, --format json too)",
                file=out,
            )
    if run.rules:
        print(f"per file ({'would be ' if run.dry_run else ''}reverted by rule):", file=out)
        for rule, n in sorted(run.rules.items()):
            print(f"  {rule}: {n} file(s)", file=out)
        listed = run.rule_files if verbose else run.rule_files[:NOTES_SHOWN]
        for path, rule, counts in listed:
            what = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            print(f"  {path}: {rule}" + (f" ({what})" if what else ""), file=out)
        if len(listed) < len(run.rule_files):
            print(
                f"  ... and {len(run.rule_files) - len(listed)} more (-v lists them all)", file=out
            )
    diffs = any(diff for _, diff in run.files)
    if run.files and (verbose or diffs):
        for path, diff in run.files:
            print(f"  would change {path}", file=out)
            if diff:
                print(diff, end="", file=out)
    elif run.files:
        print(
            f"would change {len(run.files)} file(s) (-v lists them"
            + (", --diff shows the changes)" if run.plan.direction == "up" else ")"),
            file=out,
        )
    if run.theirs:
        print(
            f"{len(run.theirs)} file(s) saved or deleted by another writer while this ran,"
            f" kept as they left them: {', '.join(run.theirs[:5])}"
            + (" ..." if len(run.theirs) > 5 else "")
            + (" (`migrate up` catches them up)" if run.plan.direction == "up" else ""),
            file=out,
        )
    print(_final_line(run), file=out)


def cmd_status(args: argparse.Namespace) -> int:
    from migrate.engine import status

    st = status(_repo(args), jobs=max(1, args.jobs))
    behind = st.get("behind", {}).get("files", 0)
    if args.format == "json":
        print(json.dumps(st))
    else:
        print(f"current: {st['current'] or 'base'}")
        print(f"head:    {st['head']}")
        print(f"pending: {', '.join(st['pending']) or 'none'}")
        if "behind" in st:
            b = st["behind"]
            print(
                f"behind:  {b['files']} file(s)"
                + (
                    f" ({b['failures']} failure file(s) other writers added or rewrote at v1,"
                    f" {b['queues']} queue(s) whose statuses to derive): `migrate up`"
                    " catches them up"
                    if b["files"]
                    else ""
                )
            )
            if b["others"]:
                print(f"         {len(b['others'])} file(s) other writers wrote, at head: no step")
            if args.verbose:
                for item in [*b["list"], *b["others"]]:
                    print(f"  {item['path']}  ({item['why']})")
        if "unfinished" in st:
            u = st["unfinished"]
            print(
                f"unfinished: run {u['run']} ({u['kind']} to {u['to'] or 'base'}) - the next"
                " `migrate up` or `migrate down` finishes it"
            )
    if args.check and (st["pending"] or behind or "unfinished" in st):
        if args.format != "json":
            print("not at head: run `migrate up`", file=sys.stderr)
        return 1
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from migrate.engine import history

    runs = history(_repo(args))
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


def cmd_up(args: argparse.Namespace) -> int:
    from migrate.engine import up
    from migrate.progress import progress_for
    from migrate.steps.base import RunOptions

    run = up(
        _repo(args),
        args.to,
        dry_run=args.dry_run or args.diff,
        diff=args.diff,
        options=RunOptions(
            tuple(_from_here(e) for e in args.evidence or ()),
            _from_here(args.recipes),
            args.quarantine,
            args.no_recipes,
        ),
        progress=progress_for(args, "up"),
        jobs=max(1, args.jobs),
    )
    _print_run(run, args)
    if not run.plan.steps and args.evidence and args.format == "text" and not args.quiet:
        print(
            "migrate: hint: evidence is applied by step 0002 to the files it migrates; to"
            " apply new evidence to files already at head: `migrate down --to 0001`, then"
            " `migrate up --evidence DIR`",
            file=sys.stderr,
        )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from migrate.engine import down
    from migrate.progress import progress_for

    run = down(
        _repo(args),
        args.to,
        dry_run=args.dry_run,
        force=args.force,
        jobs=max(1, args.jobs),
        progress=progress_for(args, "down"),
    )
    _print_run(run, args)
    return DataChanged.exit_code if run.refused else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from migrate.engine import verify

    bad, others = verify(_repo(args), jobs=max(1, args.jobs))
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


def cmd_ingest(args: argparse.Namespace) -> int:
    from migrate.ingest import ingest
    from migrate.store.ledger import Ledger
    from migrate.store.lock import hold

    repo = _repo(args)
    with hold(repo, "ingest"):
        rel, n, problems = ingest(repo, args.files, stdout=args.stdout)
    for p in problems:
        print(f"migrate: skipped: {p}", file=sys.stderr)
    if not args.stdout:
        print(f"wrote {n} records to {rel}" if rel else "no failures to record")
        print(f"the repo stays at {Ledger.load(repo).current or 'base'}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from migrate.explain import explain, format_text

    doc = explain(_repo(args), args.package_id, recipes=_from_here(args.recipes))
    print(json.dumps(doc, indent=2) if args.format == "json" else format_text(doc))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from migrate import report as rp

    r = rp.build_report(_repo(args), queue=args.queue)
    if args.format == "json":
        text = json.dumps(r.as_dict(), indent=2) + "\n"
    elif args.format == "dashboard":
        text = json.dumps(rp.format_dashboard(r), indent=2) + "\n"
    elif args.format == "csv":
        text = rp.format_csv(r)
    elif args.format == "html":
        from migrate.html_report import render

        text = render(r, top=args.top)
    else:
        text = rp.format_text(r, top=args.top) + "\n"
    if args.out:
        _write_out(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from migrate.export import export_frame, to_csv, to_jsonl

    frame = export_frame(_repo(args), jobs=max(1, args.jobs))
    text = to_csv(frame) if args.format == "csv" else to_jsonl(frame)
    if args.out:
        _write_out(args.out, text)
        print(f"wrote {len(frame)} records to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _write_out(path: str, text: str) -> None:
    from pathlib import Path

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MigrateError(f"{path}: cannot write ({exc.strerror})") from None


def cmd_schemas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from migrate.schemas import write_all

    for path in write_all(Path(args.out) if args.out else None):
        print(path)
    return 0


def cmd_merge_driver(args: argparse.Namespace) -> int:
    from migrate import merge

    if args.install:
        for line in merge.install(_repo(args).root):
            print(line)
        return 0
    if args.resolve:
        return merge.resolve(args.resolve)
    if len(args.files) != 4:
        raise UsageError(
            "merge-driver takes --install, --resolve PATH, or the four files git gives a"
            " driver (%O %A %B %P)"
        )
    return merge.drive(*args.files)


def cmd_demo(args: argparse.Namespace) -> int:
    from migrate.demo import run_demo

    return run_demo(keep=args.keep, out=sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="migrate",
        description="Migrate and backfill tsuku's batch-pipeline failure records and queues.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"migrate {__version__}")
    p.add_argument(
        "--debug", action="store_true", help="show the traceback when a step fails (a bug)"
    )
    # global options: before the command (defaults here) or after it (no defaults there,
    # so that a value given before is kept)
    for parser, default in ((p, None), (common := argparse.ArgumentParser(add_help=False), SUP)):
        parser.add_argument(
            "--repo",
            metavar="DIR",
            default=default,
            help="data repo (default: the one around the current folder)",
        )
        parser.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=default or False,
            help="print only errors and the final line (no progress)",
        )
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=default or False,
            help="print every example and file, not a summary",
        )
    jobs = argparse.ArgumentParser(add_help=False)
    for parser, default in ((p, os.cpu_count() or 1), (jobs, SUP)):
        parser.add_argument(
            "-j",
            "--jobs",
            type=_positive,
            default=default,
            metavar="N",
            help="spread files over N processes (default: the number of CPUs; at most 4 per CPU)",
        )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser(
        "check",
        parents=[common, jobs],
        help="validate each line against the schema of its own version (for CI)",
        description=(
            "Validate data/failures/*.jsonl and the queues, each line against the schema of"
            " its own version (v1-as-found or v2); lines and files below the repo's version"
            " are counted as behind head (--at-head: a violation). One line per violation,"
            " file:line: field: reason, then a summary."
        ),
        epilog="examples:\n  migrate check\n  migrate check --format github --at-head\n"
        "  migrate check data/failures/homebrew.jsonl\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("paths", nargs="*", metavar="PATH", help="only these files")
    c.add_argument("--format", choices=["text", "json", "github"], default="text")
    c.add_argument(
        "--at-head",
        action="store_true",
        help="fail while anything is behind head: a line or queue below the repo's version,"
        " a file written by others since the last run (CI after `migrate up`)",
    )
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("schemas", help="regenerate the JSON Schema files from the models")
    s.add_argument("--out", metavar="DIR", help="folder (default: the project's schemas/)")
    s.set_defaults(func=cmd_schemas)

    st = sub.add_parser(
        "status",
        parents=[common, jobs],
        help="current version, head, pending steps, files behind head",
    )
    _format_option(st, alias=True)
    st.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when not at head: steps pending, files behind, a run unfinished (CI)",
    )
    st.set_defaults(func=cmd_status)

    h = sub.add_parser("history", parents=[common], help="steps applied, when, by which version")
    _format_option(h, alias=True)
    h.set_defaults(func=cmd_history)

    u = sub.add_parser(
        "up",
        parents=[common, jobs],
        help="apply migration steps (default: all, to head)",
        description="Apply steps in order up to --to (default head). Each file is replaced"
        " atomically; a killed run is finished by the next `migrate up`.",
        epilog="examples:\n  migrate up --dry-run --diff\n  migrate up --to 0001\n"
        "  migrate up --evidence ci-artifacts/\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    u.add_argument("--to", metavar="ID", help="target step id, prefix or name; head (default), +N")
    u.add_argument("--dry-run", action="store_true", help="write nothing; show the plan and counts")
    u.add_argument(
        "--diff", action="store_true", help="show a unified diff of each file (implies --dry-run)"
    )
    u.add_argument(
        "--evidence",
        action="append",
        metavar="DIR",
        help="folder of CI artifacts and logs to take blockers from (repeatable)",
    )
    recipes = u.add_mutually_exclusive_group()
    recipes.add_argument(
        "--recipes",
        metavar="DIR",
        help="recipes tree: a blocker with a recipe is resolved (default: the repo's"
        " recipes/, or what the last run used)",
    )
    recipes.add_argument(
        "--no-recipes", action="store_true", help="derive queue status without a recipes tree"
    )
    u.add_argument(
        "--quarantine",
        action="store_true",
        help="move bad failure lines verbatim into the ledger and migrate the rest"
        " (down puts them back where they were); default: refuse the run",
    )
    _format_option(u)
    u.set_defaults(func=cmd_up)

    dn = sub.add_parser(
        "down",
        parents=[common, jobs],
        help="revert migration steps (default: the last one)",
        description="Revert steps down to --to (default: undo the last applied step). On data"
        " that came from v1, `migrate down --to base` restores the original bytes exactly.",
        epilog="examples:\n  migrate down --to base\n  migrate down --dry-run\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dn.add_argument("--to", metavar="ID", help="keep steps up to ID; base reverts all; -N")
    dn.add_argument("--dry-run", action="store_true", help="write nothing; show the plan")
    dn.add_argument(
        "--force",
        action="store_true",
        help="where a file cannot be reverted without overwriting another writer's values"
        " (a queue that no longer parses, a run that did not record what it set), leave it"
        " as it is instead of refusing",
    )
    _format_option(dn)
    dn.set_defaults(func=cmd_down)

    v = sub.add_parser(
        "verify",
        parents=[common, jobs],
        help="list files written by others since the last run, new ones too (checksums)",
    )
    _format_option(v)
    v.set_defaults(func=cmd_verify)

    ex = sub.add_parser(
        "explain",
        parents=[common],
        help="why a package has its queue status: records, blockers, evidence, rule",
        epilog="example:\n  migrate explain homebrew:node --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("package_id", metavar="PACKAGE_ID", help="e.g. homebrew:node")
    _format_option(ex, alias=True)
    ex.add_argument("--recipes", metavar="DIR", help="recipes tree (as for up --recipes)")
    ex.set_defaults(func=cmd_explain)

    rp = sub.add_parser(
        "report",
        parents=[common],
        help="queue counts by status and blockers ranked by impact (text/json/csv/html)",
        description="Reports on the current queue state of a migrated repo: counts by status,"
        " by ecosystem and by tier/priority; blockers ranked by how many packages a recipe"
        " would unblock, directly and through chains. The unified queue is used when there is"
        " one (--queue picks another).",
        epilog="examples:\n  migrate report\n  migrate report --format html --out report.html\n"
        "  migrate report --format dashboard --out website/pipeline/blockers.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument(
        "--format", choices=["text", "json", "csv", "html", "dashboard"], default="text"
    )
    rp.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    rp.add_argument("--queue", metavar="FILE", help="report on this queue file")
    rp.add_argument(
        "--top", type=_positive, default=20, help="blockers in the text table and HTML chart"
    )
    rp.set_defaults(func=cmd_report)

    xp = sub.add_parser(
        "export",
        parents=[common, jobs],
        help="every failure record flat, one row each (CSV or JSON Lines), for analysis",
        description="Every failure record of every file as one row: file, line, position in"
        " its line, package, scope, platform, category (canonical, legacy name beside it),"
        " blockers and their evidence sources, timestamp, run. Works at any version; the"
        " files themselves keep their shapes.",
        epilog="examples:\n  migrate export --out records.csv\n"
        "  migrate export --format jsonl | jq 'select(.category == \"missing_dep\")'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    xp.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    xp.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    xp.set_defaults(func=cmd_export)

    ig = sub.add_parser(
        "ingest",
        parents=[common],
        help="turn CI validation artifacts (+ install JSON) into v2 lines with blocked_by",
        description="Read validation-results-<platform>.json files (and tsuku install --json"
        " outputs) and write their failures as v2 records to data/failures/batch-<now>.jsonl.",
        epilog="example:\n  migrate ingest ci/validation-results-*.json ci/install/*.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ig.add_argument("files", nargs="+", metavar="FILE")
    ig.add_argument("--stdout", action="store_true", help="print the lines instead of writing")
    ig.set_defaults(func=cmd_ingest)

    md = sub.add_parser(
        "merge-driver",
        parents=[common],
        help="git merge driver for the queues: a conflict resolved entry by entry",
        description="Resolves a conflicting queue from its three versions, entry by entry:"
        " the other writer's values win for what it owns (statuses it set, failure_count,"
        " next_retry_at, entries it added or removed, order); `migrate up` derives status"
        " again afterwards. Set up once per clone with --install.",
        epilog="examples:\n  migrate merge-driver --install\n"
        "  migrate merge-driver --resolve data/queues/priority-queue.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    md.add_argument(
        "--install",
        action="store_true",
        help="add the driver to .gitattributes and git config (once per clone)",
    )
    md.add_argument("--resolve", metavar="PATH", help="resolve a queue git left conflicted")
    md.add_argument("files", nargs="*", metavar="FILE", help="%%O %%A %%B %%P (as git calls it)")
    md.set_defaults(func=cmd_merge_driver)

    d = sub.add_parser(
        "demo",
        help="run the tool on a temporary copy of the bundled sample repo",
        description="Copies the bundled sample data repo to a temporary folder and runs on it.",
    )
    d.add_argument("--keep", action="store_true", help="keep the temporary copy and print its path")
    d.set_defaults(func=cmd_demo)
    return p


def reference() -> str:
    """The command reference the README carries (a test compares them): each command's
    one-line help and usage, at a fixed width of 100 columns."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # (argparse wraps usage to the terminal's width)
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps = {a.dest: a.help for a in sub._choices_actions}
        out = [parser.format_usage()]
        for name, cmd in sub.choices.items():
            out.append(f"{name}: {helps[name]}\n{cmd.format_usage()}")
        return "\n".join(out)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def run() -> int:
    """The program (``migrate``, ``python -m migrate``)."""
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StepBug as exc:
        if args.debug:
            for text in exc.tracebacks:
                print(text, file=sys.stderr)
        print(f"migrate: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"migrate: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except BadInputError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"migrate: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"migrate: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except MigrateError as exc:
        print(f"migrate: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"migrate: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migrate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
