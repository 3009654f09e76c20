"""The command line: parses arguments, calls the library, prints. No logic lives here.

One module per group of commands (:mod:`.state`: check, status, history, verify;
:mod:`.writes`: up, down, ingest, merge-driver; :mod:`.views`: explain, report, export,
schemas, demo), each registering its subcommands; :mod:`.output` prints a run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from migrate import __version__
from migrate.cli import state, timeline, views, writes
from migrate.cli.common import EPILOG, add_globals, add_jobs, parents
from migrate.errors import MigrateError

#: what adds the subcommands, in the order `--help` lists them: check status history,
#: schemas, up down, verify, explain report export, ingest merge-driver, demo
REGISTER = (
    state.register,
    views.register_schemas,
    state.register_status,
    writes.register_up_down,
    state.register_verify,
    views.register,
    timeline.register,
    writes.register_ingest_merge,
    views.register_demo,
)


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
    add_globals(p, None)
    add_jobs(p, os.cpu_count() or 1)
    common, jobs_parser = parents()
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTER:
        register(sub, common, jobs_parser)
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MigrateError as exc:  # one clear message, the problems it names, its hint
        if args.debug:
            for text in getattr(exc, "tracebacks", ()):
                print(text, file=sys.stderr)
        for line in getattr(exc, "problems", ()):
            print(line, file=sys.stderr)
        print(f"migrate: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"migrate: hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migrate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
