"""How a run (``up``, ``down``) is printed: a short summary by default, every example and
file with ``-v``, the final line only with ``-q``, everything as JSON with ``--format
json`` (errors go to stderr whatever the level)."""

from __future__ import annotations

import json
import sys

from migrate.cli.common import NOTES_SHOWN
from migrate.engine.report import RunReport


def print_run(run: RunReport, args, out=None) -> None:
    out = out or sys.stdout
    if getattr(args, "format", "text") == "json":
        print(json.dumps(run.as_dict(), indent=2), file=out)
        return
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    for reason in run.refused:
        print(f"refused: {reason}", file=sys.stderr)
    if not quiet:
        lines = [*_plan(run), *_steps(run, verbose), *_rules(run, verbose), *_files(run, verbose)]
        for line in lines:
            print(line, file=out)
    print(run.final_line(), file=out)


def _plan(run: RunReport) -> list[str]:
    head = "dry run: " if run.dry_run else ""
    out = [run.settled] if run.settled else []
    if run.plan.steps:
        out += [head + line for line in run.plan.describe()]
    return out


def _shown(items: list, verbose: bool, what: str) -> tuple[list, list[str]]:
    shown = items if verbose else items[:NOTES_SHOWN]
    more = [f"  ... and {len(items) - len(shown)} more ({what})"] if len(shown) < len(items) else []
    return shown, more


def _steps(run: RunReport, verbose: bool) -> list[str]:
    verb = "would change" if run.dry_run else "changed"
    out = []
    for sr in run.steps:
        out.append(
            f"{sr.step.id} {sr.step.name}: {verb} {sr.changed_files} of {sr.files_read} files"
        )
        out += [f"  {key}: {n}" for key, n in sorted(sr.totals.items())]
        out += [f"  lines the ledger keeps whole ({r}): {n}" for r, n in sorted(sr.kept.items())]
        shown, more = _shown(sr.notes, verbose, "-v lists them all, --format json too")
        out += [f"  {note}" for note in shown] + more
    return out


def _rules(run: RunReport, verbose: bool) -> list[str]:
    if not run.rules:
        return []
    out = [f"per file ({'would be ' if run.dry_run else ''}reverted by rule):"]
    out += [f"  {rule}: {n} file(s)" for rule, n in sorted(run.rules.items())]
    shown, more = _shown(run.rule_files, verbose, "-v lists them all")
    for path, rule, counts in shown:
        what = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        out.append(f"  {path}: {rule}" + (f" ({what})" if what else ""))
    return out + more


def _files(run: RunReport, verbose: bool) -> list[str]:
    out = []
    if run.files and (verbose or any(diff for _, diff in run.files)):
        for path, diff in run.files:
            out.append(f"  would change {path}")
            if diff:
                out.append(diff.rstrip("\n"))
    elif run.files:
        tail = ", --diff shows the changes)" if run.plan.direction == "up" else ")"
        out.append(f"would change {len(run.files)} file(s) (-v lists them" + tail)
    if run.theirs:
        out.append(
            f"{len(run.theirs)} file(s) saved or deleted by another writer while this ran,"
            f" kept as they left them: {', '.join(run.theirs[:5])}"
            + (" ..." if len(run.theirs) > 5 else "")
            + (" (`migrate up` catches them up)" if run.plan.direction == "up" else "")
        )
    return out
