"""``migrate check``: validate a data repo, each line against the schema of its own version.

The repo keeps living after a migration: tsuku's writers add v1 failure lines and save
the queue through a struct that drops ``blocked_by``. So each failure line is validated
against the model of its own version and shape (v1-as-found or v2), and a line below the
repo's version is counted as *behind head*, not a violation (``migrate up`` catches it
up); a valid line above it is counted as *ahead* (written at v2 by another writer, e.g.
``migrate ingest``, and left as written by a rollback: tsuku's readers read v2 lines),
not a violation either. A queue is valid at its own version (its writer keeps the version
it read); it is behind head when step 0003 would change a status in it (after a batch:
``migrate up`` derives it). ``at_head`` (``--at-head``, CI after ``up``) makes anything
behind a violation, and an interrupted run is one whatever the option. Where the tool's
own judgement differs from tsuku's rules, a note says so with both reasons. Every line
is accounted for in the report (envelope + per-recipe + blank + bad == lines read), and
every problem is one ``file:line: field: reason`` entry; nothing stops
the check early. Unknown keys are notes (carried through by every step), never
violations: a new upstream field must not turn CI red.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import MigrateError, UsageError
from migrate.layout import FAILURES_DIR
from migrate.parallel import map_files
from migrate.progress import phase
from migrate.queues import parsed_queue
from migrate.reader import Problem, iter_failure_lines
from migrate.steps.s0003_queue_status import unmigratable
from migrate.store import Store
from migrate.store.ledger import Ledger

NOTES_SHOWN = 20


@dataclass
class CheckReport:
    version: str | None = None  # the ledger's current step id, None at base
    failures_version: int = 1
    files: Counter[str] = field(default_factory=Counter)  # failures/empty/queue/batch-results
    lines: Counter[str] = field(default_factory=Counter)  # blank/envelope/recipe/bad
    records: Counter[str] = field(default_factory=Counter)  # envelope/recipe records
    queue_entries: Counter[str] = field(default_factory=Counter)  # legacy/unified
    behind: Counter[str] = field(default_factory=Counter)  # lines/queues/files behind head
    ahead: int = 0  # valid failure lines above the repo's version
    #: files behind head with why (at head: what `migrate up` would write)
    behind_files: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: unknown keys, carried through untouched: reported, never a violation
    notes: list[Problem] = field(default_factory=list)
    #: each failure file's checksum and version as read (the at-head scan reads none again)
    seen: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total_lines(self) -> int:
        return sum(self.lines.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "failures_schema_version": self.failures_version,
            "files": dict(self.files),
            "lines": dict(self.lines),
            "records": dict(self.records),
            "queue_entries": dict(self.queue_entries),
            "behind": dict(self.behind),
            "behind_files": [{"path": p, "why": w} for p, w in self.behind_files],
            "ahead": self.ahead,
            "violations": [p.as_dict() for p in self.problems],
            "notes": [p.as_dict() for p in self.notes],
        }


def expected_version(ledger: Ledger) -> int:
    """The failure-line version the repo must be at, from its ledger."""
    from migrate.steps import REGISTRY
    from migrate.steps.base import Family

    return REGISTRY.versions_at(ledger.current)[Family.FAILURES]


def _select(repo: Store, paths: list[str] | None) -> tuple[list[str], list[str]]:
    failures = repo.failure_rels()
    queues = repo.queue_files()
    if not paths:
        return failures, queues
    want_f, want_q = [], []
    for p in paths:
        full = Path(p) if Path(p).is_absolute() else Path.cwd() / p
        if not full.exists() and not full.is_symlink():
            raise UsageError(f"{p}: no such file")
        try:
            rel = full.resolve().relative_to(repo.root).as_posix()
        except ValueError:
            raise UsageError(f"{p}: not inside the data repo {repo.root}") from None
        if rel in queues:
            want_q.append(rel)
        elif rel.startswith(FAILURES_DIR + "/") and rel.endswith(".jsonl"):
            want_f.append(rel)
        else:
            raise UsageError(f"{p}: not a failure file or queue that migrate checks")
    return want_f, want_q


def _check_file(repo: Store, rel: str, want: int) -> CheckReport:
    """One failure file's counts and problems (files are independent: ``--jobs`` maps them)."""
    part = CheckReport()
    try:
        data = repo.read_bytes(rel)
    except MigrateError as exc:
        part.problems.append(Problem(rel, 0, str(exc).removeprefix(rel + ": ")))
        part.files["unreadable"] += 1
        return part
    from migrate.engine.survey import content_version
    from migrate.store.ledger import checksum

    part.seen[rel] = (checksum(data), content_version(data))
    part.files["failures" if data else "empty"] += 1
    if repo.path(rel).is_symlink():
        part.problems.append(
            Problem(rel, 0, "is a symlink: `migrate up` refuses to rewrite it (make it a file)")
        )
    for pl in iter_failure_lines(rel, data):
        if pl.problems:
            part.lines["bad"] += 1
            part.problems.extend(pl.problems)
            continue
        if pl.blank:
            part.lines["blank"] += 1
            continue
        if pl.version > want:
            part.ahead += 1
        if pl.version < want:
            part.behind["lines"] += 1
        part.notes.extend(pl.notes)
        part.lines[pl.shape] += 1
        part.records[pl.shape] += len(pl.obj["failures"]) if pl.shape == "envelope" else 1
    return part


def check_repo(
    repo: Store,
    paths: list[str] | None = None,
    progress=None,
    jobs: int = 1,
    at_head: bool = False,
) -> CheckReport:
    """Validate failure files and queues; never raises for bad data, only collects problems.
    ``at_head``: anything behind head is a problem too."""
    from migrate.engine.plan import known_ledger  # (the engine loads only where needed)

    ledger = known_ledger(repo)
    report = CheckReport(version=ledger.current)
    report.failures_version = expected_version(ledger)
    pending = ledger.pending
    if pending is not None:
        report.problems.append(
            Problem(
                pending.rel,
                0,
                f"run {pending.id} ({pending.kind} to {pending.to or 'base'}) was interrupted:"
                " the next `migrate up` or `migrate down` finishes it",
            )
        )
    failures, queues = _select(repo, paths)
    want = report.failures_version
    for part in map_files(
        lambda rel: _check_file(repo, rel, want),
        failures,
        jobs,
        phase(progress, "failure files", len(failures)),
    ):
        report.files.update(part.files)
        report.lines.update(part.lines)
        report.records.update(part.records)
        report.problems.extend(part.problems)
        report.notes.extend(part.notes)
        report.behind.update(part.behind)
        report.ahead += part.ahead
        report.seen.update(part.seen)
    for rel in queues:
        _check_queue(repo, rel, report)
    if report.version is not None and not paths and pending is None and report.ok:
        _at_head(repo, ledger, report, jobs)
    if at_head:
        report.problems.extend(_behind_problems(report))
    return report


def _check_queue(repo: Store, rel: str, report: CheckReport) -> None:
    try:
        data = repo.read_bytes(rel)
    except MigrateError as exc:
        report.problems.append(Problem(rel, 0, str(exc).removeprefix(rel + ": ")))
        report.files["unreadable"] += 1
        return
    pq = parsed_queue(rel, data)  # (validated once per content: `up` asks again)
    if pq.kind == "batch-results":
        report.files["batch-results"] += 1
    else:
        report.files["queues"] += 1
        if pq.kind:
            report.queue_entries[pq.kind] += len(pq.entries) if pq.obj else 0
        if not pq.problems and pq.kind in ("legacy", "unified"):
            report.problems.extend(unmigratable(rel, data, pq.kind))  # (up would refuse)
    report.problems.extend(pq.problems)


def _at_head(repo: Store, ledger: Ledger, report: CheckReport, jobs: int) -> None:
    """What `migrate up` would write now (at head only: with steps pending every file is
    behind, the versions say so), and where the tool's judgement differs from tsuku's."""
    from migrate.engine.plan import plan
    from migrate.engine.state import behind
    from migrate.steps.base import Family
    from migrate.views import views_of

    if plan(ledger, "up", "head").steps:
        return
    try:
        b = behind(repo, ledger, jobs, known=report.seen)
        views = views_of(repo, b.computed)
    except MigrateError as exc:  # (bad data the checks above did not name: named here)
        report.problems.append(Problem("data", 0, str(exc)))
        return
    report.behind_files = b.files
    for rel, _ in b.files:
        report.behind["queues" if Family.of(rel) is Family.QUEUES else "files"] += 1
    for f in views.findings:
        report.notes.append(
            Problem(
                f.queue,
                0,
                f"{f.package_id}: {f.status} by tsuku's rules ({f.rule}); migrate's own"
                f" judgement: {f.judged} ({f.judged_rule})",
                f"differs: {f.kind}",
            )
        )


def _behind_problems(report: CheckReport) -> list[Problem]:
    out = []
    if report.version is None or report.failures_version < 2:
        out.append(
            Problem(
                "data",
                0,
                f"the repo is at {report.version or 'base'}, not at head: run `migrate up`",
            )
        )
    elif report.behind:
        what = ", ".join(f"{n} {k}" for k, n in sorted(report.behind.items()))
        out.append(Problem("data", 0, f"behind head: {what}; run `migrate up`"))
    return out


def format_text(report: CheckReport, verbose: bool = False, quiet: bool = False) -> str:
    """Every violation, then a summary (``quiet``: its last line only); the first notes
    (``verbose``: all of them)."""
    lines = [str(p) for p in report.problems]
    if quiet:
        return "\n".join([*lines, _verdict(report)])
    shown = report.notes if verbose else report.notes[:NOTES_SHOWN]
    lines += [f"note: {p}" for p in shown]
    if len(report.notes) > len(shown):
        lines.append(f"note: ... and {len(report.notes) - len(shown)} more (-v, --format json)")
    f, ln, rec = report.files, report.lines, report.records
    lines.append(
        f"checked {f['failures'] + f['empty']} failure files ({f['empty']} empty),"
        f" {f['queues']} queues, {f['batch-results']} batch-results"
        f" at version {report.version or 'base'} (failures v{report.failures_version})"
    )
    lines.append(
        f"lines: {report.total_lines} = {ln['envelope']} envelope ({rec['envelope']} records)"
        f" + {ln['recipe']} per-recipe + {ln['blank']} blank + {ln['bad']} bad"
    )
    if report.queue_entries:
        lines.append(
            "queue entries: "
            + ", ".join(f"{n} {k}" for k, n in sorted(report.queue_entries.items()))
        )
    if report.notes:
        lines.append(f"{len(report.notes)} unknown key(s) carried through (notes, not violations)")
    if report.behind:
        lines.append(
            "behind head: "
            + ", ".join(f"{n} {k}" for k, n in sorted(report.behind.items()))
            + " (written by others since the last run: `migrate up` catches them up;"
            " --at-head makes this a violation)"
        )
    if report.ahead:
        lines.append(
            f"ahead of the repo's version: {report.ahead} line(s), valid at"
            " their own version (written by another writer, e.g. `migrate ingest`, and left"
            " as written by a rollback; not a violation)"
        )
    lines.append(_verdict(report))
    return "\n".join(lines)


def _verdict(report: CheckReport) -> str:
    """The summary's last line."""
    n = len(report.problems)
    return f"{n} violation{'s' if n != 1 else ''}" if n else "ok: no violations"


def _gh_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def format_github(report: CheckReport) -> str:
    out = []
    for p in report.problems:
        msg = _gh_escape(f"{p.field}: {p.reason}" if p.field else p.reason)
        loc = f"file={p.file},line={p.line}" if p.line else f"file={p.file}"
        out.append(f"::error {loc},title=migrate check::{msg}")
    for p in report.notes:
        loc = f"file={p.file},line={p.line}" if p.line else f"file={p.file}"
        out.append(f"::notice {loc},title=migrate check::{_gh_escape(f'{p.field}: {p.reason}')}")
    out.append(
        format_text(CheckReport(**{**report.__dict__, "problems": [], "notes": []})).splitlines()[0]
    )
    out.append(f"{len(report.problems)} violations" if report.problems else "ok: no violations")
    return "\n".join(out)
