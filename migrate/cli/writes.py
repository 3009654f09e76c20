"""Commands that write: up, down, ingest, merge-driver."""

from __future__ import annotations

import argparse
import sys

from migrate.cli.common import described, format_option, from_here, jobs, repo
from migrate.cli.output import print_run
from migrate.errors import DataChanged, UsageError


def cmd_up(args: argparse.Namespace) -> int:
    from migrate.engine import up
    from migrate.progress import progress_for
    from migrate.steps.base import RunOptions

    run = up(
        repo(args),
        args.to,
        dry_run=args.dry_run or args.diff,
        diff=args.diff,
        options=RunOptions(
            tuple(from_here(e) for e in args.evidence or ()),
            from_here(args.recipes),
            args.quarantine,
            args.no_recipes,
        ),
        progress=progress_for(args, "up"),
        jobs=jobs(args),
    )
    print_run(run, args)
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
        repo(args),
        args.to,
        dry_run=args.dry_run,
        force=args.force,
        jobs=jobs(args),
        progress=progress_for(args, "down"),
    )
    print_run(run, args)
    return DataChanged.exit_code if run.refused else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from migrate.ingest import ingest
    from migrate.store.ledger import Ledger
    from migrate.store.lock import hold

    store = repo(args)
    with hold(store, "ingest"):
        rel, n, problems = ingest(store, args.files, stdout=args.stdout)
    for p in problems:
        print(f"migrate: skipped: {p}", file=sys.stderr)
    if not args.stdout:
        print(f"wrote {n} records to {rel}" if rel else "no failures to record")
        print(f"the repo stays at {Ledger.load(store).current or 'base'}")
    return 0


def cmd_merge_driver(args: argparse.Namespace) -> int:
    from migrate import merge

    if args.install:
        for line in merge.install(repo(args).root):
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


def register_up_down(sub, common, jobs_parser) -> None:
    u = sub.add_parser(
        "up",
        parents=[common, jobs_parser],
        help="apply migration steps (default: all, to head)",
        **described(
            "Apply steps in order up to --to (default head), and derive queue status again;"
            " nothing is written when nothing changes. Each file is replaced atomically; a"
            " killed run is finished by the next `migrate up`.",
            "migrate up --dry-run --diff",
            "migrate up --to 0001",
            "migrate up --evidence ci-artifacts/",
        ),
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
    format_option(u)
    u.set_defaults(func=cmd_up)
    _register_down(sub, common, jobs_parser)


def _register_down(sub, common, jobs_parser) -> None:
    dn = sub.add_parser(
        "down",
        parents=[common, jobs_parser],
        help="revert migration steps (default: the last one)",
        **described(
            "Revert steps down to --to (default: undo the last applied step). On data that"
            " came from v1, `migrate down --to base` restores the original bytes exactly.",
            "migrate down --to base",
            "migrate down --dry-run",
        ),
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
    format_option(dn)
    dn.set_defaults(func=cmd_down)


def register_ingest_merge(sub, common, jobs_parser) -> None:
    ig = sub.add_parser(
        "ingest",
        parents=[common],
        help="turn CI validation artifacts (+ install JSON) into v2 lines with blocked_by",
        **described(
            "Read validation-results-<platform>.json files (and tsuku install --json"
            " outputs) and write their failures as v2 records to"
            " data/failures/batch-<now>.jsonl.",
            "migrate ingest ci/validation-results-*.json ci/install/*.json",
        ),
    )
    ig.add_argument("files", nargs="+", metavar="FILE")
    ig.add_argument("--stdout", action="store_true", help="print the lines instead of writing")
    ig.set_defaults(func=cmd_ingest)
    md = sub.add_parser(
        "merge-driver",
        parents=[common],
        help="git merge driver for the queues: a conflict resolved entry by entry",
        **described(
            "Resolves a conflicting queue from its three versions, entry by entry: the other"
            " writer's values win for what it owns (statuses it set, failure_count,"
            " next_retry_at, entries it added or removed, order); `migrate up` derives status"
            " again afterwards. Set up once per clone with --install.",
            "migrate merge-driver --install",
            "migrate merge-driver --resolve data/queues/priority-queue.json",
        ),
    )
    md.add_argument(
        "--install",
        action="store_true",
        help="add the driver to .gitattributes and git config (once per clone)",
    )
    md.add_argument("--resolve", metavar="PATH", help="resolve a queue git left conflicted")
    md.add_argument("files", nargs="*", metavar="FILE", help="%%O %%A %%B %%P (as git calls it)")
    md.set_defaults(func=cmd_merge_driver)
