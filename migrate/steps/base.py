"""What a migration step is: one small contract, capabilities on the side (pgroll's lesson).

Every step has an id, a name, a description and a :class:`Family` (the files it rewrites),
and may ``prepare`` a context from the run's (:class:`RunContext`). Then, by kind:

* :class:`LineStep` (failure files) declares ``line_up`` and ``line_down`` over *parsed*
  lines: the engine parses each line once for all the steps of a run, hands it from step
  to step, writes it once, and proves line by line that ``line_down`` gives back what
  ``line_up`` was given. Where it cannot (another writer's spelling, say), the step must
  say why (``why_kept``); the original is kept in the ledger, and counted. An undeclared
  loss is a bug in the step, refused before anything is written.
* :class:`DerivedStep` (queues) derives its file's content from the failure records:
  ``derive`` on the file as it is (whoever wrote it last) gives the changes it makes,
  ``revert`` takes back those of its changes that still hold. It runs in every ``up``
  and writes only when it changes something; it is the last step of its family.

Optional capabilities, asked for by the engine, never by step id:

* :class:`Gathers` — a step that needs other files: ``gather`` a small typed part from
  each failure file's rows (cached by the file's checksum and ``part_version``), then
  ``combine`` the parts in the main process;
* ``preflight`` — problems in the current data that would make the step refuse later.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from migrate.layout import FailureFile
from migrate.reader import Problem


class Family(enum.Enum):
    """The files a step rewrites, in the order a run goes through them (queue status is
    derived from the failure records as the failure steps leave them)."""

    FAILURES = "failures"
    QUEUES = "queues"

    def files(self, store) -> list[str]:
        return store.failure_rels() if self is Family.FAILURES else store.queue_rels()

    @classmethod
    def of(cls, rel: str) -> Family:
        return cls.FAILURES if rel.startswith("data/failures/") else cls.QUEUES


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of a run (``migrate up`` flags), typed."""

    evidence: tuple[str, ...] = ()  # --evidence folders or files
    #: the recipes tree (--recipes; None: as the last run, else the repo's recipes/)
    recipes: str | None = None
    quarantine: bool = False  # --quarantine
    no_recipes: bool = False  # --no-recipes


@dataclass(frozen=True)
class RunContext:
    """What every step's ``prepare`` is given: read-only facts about the repo as the run
    found it, and the run's options and time (the one clock reading of the run)."""

    store: Any
    options: RunOptions
    #: recipe name -> package id, from the queues (None: ambiguous; absent: unknown)
    names: dict[str, str | None]
    #: the package id of every entry of every priority queue
    queue_ids: frozenset[str]
    now: str


def run_context(store, options: RunOptions | None = None) -> RunContext:
    """The context of a run on ``store`` now: the queues read once, the clock read once."""
    from migrate import clock
    from migrate.queues import load_queue_docs, name_index, queue_ids

    return RunContext(
        store,
        options or RunOptions(),
        name_index(load_queue_docs(store)),
        queue_ids(store),
        clock.now_iso(),
    )


class LineProblem(ValueError):
    """A line a step cannot take (bad input): one ``field: reason`` or several."""

    def __init__(self, reason: str, field: str = "", more: list[Problem] | None = None):
        super().__init__(reason)
        self.field = field
        self.more = more or []  # (further problems of the same line, as Problems)

    def at(self, rel: str, lineno: int) -> list[Problem]:
        if self.more:
            return [Problem(rel, lineno, p.reason, p.field) for p in self.more]
        return [Problem(rel, lineno, str(self), self.field)]


@dataclass
class Tally:
    """What a step counts and notes while it runs (for the summary and the ledger)."""

    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LineAt:
    """Where a line is: its file and line number."""

    ff: FailureFile
    lineno: int

    @property
    def rel(self) -> str:
        return self.ff.rel


class Step:
    id: str = ""
    name: str = ""
    description: str = ""
    family: Family = Family.FAILURES
    derived: bool = False

    def preflight(self, store, files: list[str]) -> list[Problem]:
        """Problems in the *current* data that would make this step refuse later; the
        engine asks every planned step, with the files it may rewrite, before anything is
        read or written."""
        return []

    def prepare(self, ctx: RunContext) -> Any:
        return None

    def summary(self, prepared: Any, totals: Counter[str]) -> list[str]:
        """Extra lines for the run summary (e.g. evidence per source)."""
        return []

    def __repr__(self) -> str:
        return f"<step {self.id} {self.name}>"


class LineStep(Step):
    """A step over the lines of failure files (see the module)."""

    family = Family.FAILURES
    #: the schema version of a line once the step has run
    produces: int = 2
    #: whether ``--quarantine`` applies to the lines it refuses (blanked, kept in the ledger)
    quarantines: bool = False

    def may_change(self, raw: bytes, at: LineAt, prepared: Any) -> bool:
        """Whether ``line_up`` may change this line, told from its bytes (a fast path:
        a line no planned step may change is not decoded). Default: yes."""
        return True

    def line_up(self, line: dict[str, Any], at: LineAt, prepared: Any, tally: Tally):
        """The line changed (a new dict), or None when the step leaves it as it is; raises
        :class:`LineProblem` for a line it cannot take."""
        raise NotImplementedError

    def line_down(self, line: dict[str, Any]) -> dict[str, Any]:
        """The line before ``line_up`` (a function of the line alone)."""
        raise NotImplementedError

    def why_kept(self, raw: bytes, line: dict[str, Any]) -> str | None:
        """Why ``line_down(line_up(line))`` may not give back ``raw`` byte for byte (then
        the ledger keeps ``raw``); None: it must, and a line where it does not is a bug."""
        return None


@dataclass
class Derivation:
    """What a derived step's ``derive`` gives for one file."""

    data: bytes  # the file's new bytes (the same bytes when nothing changes)
    changes: Any = None  # what ``revert`` needs (None: nothing changed)
    tally: Tally = field(default_factory=Tally)
    problems: list[Problem] = field(default_factory=list)


class DerivedStep(Step):
    """A step whose file is derived from the failure records (see the module)."""

    family = Family.QUEUES
    derived = True

    def derive(self, rel: str, data: bytes, prepared: Any) -> Derivation:
        raise NotImplementedError

    def revert(self, rel: str, data: bytes, changes: Any) -> tuple[bytes, Counter[str]]:
        """``data`` with this step's ``changes`` taken back where they still hold (what
        another writer set since stays); counts of what went back and what stayed.
        Raises ValueError where it cannot tell (the file no longer parses)."""
        raise NotImplementedError


@runtime_checkable
class Gathers(Protocol):
    """A step that needs what other failure files say (see the module). ``gather`` is a
    function of one file's rows alone (run in worker processes, cached by the file's
    checksum and ``part_version``); ``combine`` gets the parts in file order."""

    part_version: int

    def gather(self, rel: str, rows: list[dict[str, Any]]) -> Any: ...

    def combine(self, prepared: Any, parts: Iterable[tuple[str, Any]]) -> None: ...
