"""What every command shares: the repo it acts on, option helpers, writing a file out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from migrate.errors import MigrateError, UsageError
from migrate.store import Store

EPILOG = """\
exit codes: 0 ok, 1 violations / files behind head, 2 usage, I/O or bad input, 3 lock
held, 4 ledger/version problem, 5 a down that would overwrite another writer's values
(or an interrupted run that cannot be finished), 6 a bug in a step
"""
SUP = argparse.SUPPRESS
NOTES_SHOWN = 5  # examples per step in the default summary (-v: all)


def format_option(parser: argparse.ArgumentParser, alias: bool = False) -> None:
    """``--format text|json`` (``--json``: the same as ``--format json``, where it was)."""
    parser.add_argument("--format", choices=["text", "json"], default="text")
    if alias:
        parser.add_argument(
            "--json", dest="format", action="store_const", const="json", help="--format json"
        )


def positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 or more")
    return n


def from_here(path: str | None) -> str | None:
    """A path given on the command line, relative to the current folder (not the repo's
    root, which --repo or the search upwards may have chosen)."""
    return os.path.abspath(path) if path else path


def repo(args: argparse.Namespace) -> Store:
    """``--repo DIR``, else the tsuku data repo around the current folder (found as git
    finds its root: the nearest folder upwards holding ``data/failures`` or ``data/queues``)."""
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
    return Store(here)  # (names the problem: not a tsuku data repo)


def jobs(args: argparse.Namespace) -> int:
    return max(1, args.jobs)


def emit(args: argparse.Namespace, text: str, what: str = "") -> int:
    """A view's text to ``--out`` (saying what was written) or to stdout."""
    if args.out:
        write_out(args.out, text)
        print(f"wrote {what + ' to ' if what else ''}{args.out}")
    else:
        sys.stdout.write(text)
    return 0


def write_out(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MigrateError(f"{path}: cannot write ({exc.strerror})") from None


def parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """(the options every repo command takes after its name, ``-j``): with no defaults,
    so that a value given before the command is kept."""
    common = argparse.ArgumentParser(add_help=False)
    add_globals(common, SUP)
    jobs_parser = argparse.ArgumentParser(add_help=False)
    add_jobs(jobs_parser, SUP)
    return common, jobs_parser


def add_globals(parser: argparse.ArgumentParser, default) -> None:
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


def add_jobs(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "-j",
        "--jobs",
        type=positive,
        default=default,
        metavar="N",
        help="spread files over N processes (default: the number of CPUs; at most 4 per CPU)",
    )


def described(text: str, *examples: str) -> dict:
    """A subcommand's description and examples (with the exit codes), as argparse takes them."""
    out: dict = {"formatter_class": argparse.RawDescriptionHelpFormatter}
    if text:
        out["description"] = text
    if examples:
        out["epilog"] = "examples:\n" + "".join(f"  {e}\n" for e in examples) + "\n" + EPILOG
    return out
