"""What a migration step is: an id, a description, and a pure ``up``/``down`` per file."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from migrate import codec
from migrate.reader import Problem, join_lines, split_lines
from migrate.repo import DataRepo


@dataclass
class UpResult:
    """The outcome of a step's ``up`` on one file.

    ``patch`` is whatever the step's ``down`` needs besides the new bytes (JSON-able, kept
    in the ledger); ``counts`` feed the dry-run and the run summary.
    """

    data: bytes
    patch: Any = None
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: True when the step itself proved, line by line, that ``down`` rebuilds the exact
    #: input; None lets the engine run ``down`` on the file to find out.
    exact: bool | None = None


class LinePatch:
    """What ``down`` of a line-by-line step needs besides the new bytes: the original of
    each line its line-wise inverse would not give back exactly (or that it blanked,
    see ``--quarantine``), whether the file lacked a final newline, and, for a step that
    changes some lines only (``changed`` a list), which ones: ``down`` takes back only
    those. Lines never move, so a line number is the same before and after."""

    def __init__(self, data: bytes, some_lines: bool = False):
        self.lines: dict[str, str] = {}
        self.lines64: dict[str, str] = {}
        self.no_final_newline = bool(data) and not data.endswith(b"\n")
        self.changed: list[int] | None = [] if some_lines else None

    def changed_line(
        self, lineno: int, raw: bytes, new: Any, line_down: Callable[[Any], Any]
    ) -> bytes:
        """The bytes of a line the step changed to ``new``; the original is kept when
        ``line_down`` does not give it back byte for byte (the proof ``up`` makes)."""
        if self.changed is not None:
            self.changed.append(lineno)
        if codec.dumps_bytes(line_down(new)) != raw:
            self.keep(lineno, raw)
        return codec.dumps_bytes(new)

    def keep(self, lineno: int, raw: bytes) -> None:
        try:
            self.lines[str(lineno)] = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.lines64[str(lineno)] = base64.b64encode(raw).decode("ascii")

    def to_json(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if self.lines:
            out["lines"] = self.lines
        if self.lines64:
            out["lines64"] = self.lines64
        if self.no_final_newline:
            out["no_final_newline"] = True
        if self.changed is not None:
            out["changed"] = self.changed
        return out or None


def down_lines(data: bytes, patch: Any, line_down: Callable[[Any], Any]) -> bytes:
    """A file back through a line-by-line step: each decoded line through ``line_down``
    (a line it leaves as it is keeps its bytes; blank lines stay), except the lines the
    patch keeps (:class:`LinePatch`)."""
    patch = patch or {}
    kept = patch.get("lines", {})
    kept64 = patch.get("lines64", {})
    changed = set(patch["changed"]) if "changed" in patch else None
    out = []
    for lineno, raw in split_lines(data):
        key = str(lineno)
        if key in kept:
            out.append(kept[key].encode("utf-8"))
        elif key in kept64:
            out.append(base64.b64decode(kept64[key]))
        elif not raw.strip() or (changed is not None and lineno not in changed):
            out.append(raw)
        else:
            obj = codec.loads(raw)
            new = line_down(obj)
            out.append(raw if new == obj else codec.dumps_bytes(new))
    body = join_lines(out) if out else b""
    return body[:-1] if patch.get("no_final_newline") else body


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of a run (``migrate up`` flags), typed."""

    evidence: tuple[str, ...] = ()  # --evidence folders or files
    recipes: str | None = None  # --recipes tree
    quarantine: bool = False  # --quarantine


@dataclass(frozen=True)
class RunContext:
    """What every step's ``prepare`` is given: read-only facts about the repo as the run
    found it, and the run's options and time (the one clock reading of the run)."""

    repo: DataRepo
    options: RunOptions
    #: recipe name -> package id, from the queues (None: ambiguous; absent: unknown)
    names: dict[str, str | None]
    #: the package id of every entry of every priority queue
    queue_ids: frozenset[str]
    now: str


def run_context(repo: DataRepo, options: RunOptions | None = None) -> RunContext:
    """The context of a run on ``repo`` now: the queues read once (their name index and
    package ids), the clock read once."""
    from migrate import clock
    from migrate.queues import load_queue_docs, name_index, queue_ids

    return RunContext(
        repo,
        options or RunOptions(),
        name_index(load_queue_docs(repo)),
        queue_ids(repo),
        clock.now_iso(),
    )


class Step:
    """A migration step: an id, a description, and a pure ``up``/``down`` per file.

    The engine runs the planned steps file by file, each file read once and written once
    whatever the number of steps: ``up`` gets the bytes the previous step of the run left,
    in memory. What a step needs from *other* files comes from ``gather`` and ``combine``,
    which the engine calls in one read-only pass before the files are rewritten:

    * ``prepare(ctx)`` — the step's context, without reading failure files;
    * ``gather(rel, rows)`` — called for each failure file (in worker processes), with its
      records as flat rows (:func:`migrate.records.flat_records`); returns a small JSON
      part, a function of the rows alone: the engine keeps it in the gather index
      (:mod:`migrate.engine.index`) keyed by the file's checksum, so a catch-up run reads
      only the files that changed. A failure-family step is given the parts of the files
      it rewrites as the run found them and the others' as they are (steps of its own
      family rewrite lines without changing what rows say about them, except
      ``blocked_by`` and ``category``); a queue-family step sees the files as the failure
      steps of the run left them;
    * ``combine(prepared, parts)`` — the parts in file order, in the main process (an
      iterable it may go through more than once: each part is decoded as it comes);
    * ``up(rel, data, prepared)`` -> :class:`UpResult` and ``down(rel, data, patch)``.

    The engine validates every line or document a step writes against the model of its
    version before anything is committed, and proves ``down(up(x)) == x`` (or keeps
    ``x``). An exception raised by step code is reported as a bug in the step.
    """

    id: str = ""
    name: str = ""
    description: str = ""
    #: the files it rewrites: "failures" (data/failures/*.jsonl) or "queues"
    family: str = ""
    #: the schema version of its family's files once it has run
    produces: int = 1
    #: whether the engine calls ``gather``/``combine``
    gathers: bool = False
    #: whether it may change what a failure file's rows say (blockers, category): then the
    #: parts of what it wrote are gathered again (a step that only changes the layout
    #: leaves rows as they were)
    changes_rows: bool = False
    #: a derived step (queue status) is run again whenever the failure files change: the
    #: engine reverts what it last wrote (its ``down``) and applies it anew
    derived: bool = False

    def files(self, repo: DataRepo) -> list[str]:
        """The files this step may rewrite (relative paths)."""
        raise NotImplementedError

    def preflight(self, repo: DataRepo, files: list[str]) -> list[Problem]:
        """Problems in the *current* data that would make this step refuse later; the engine
        asks every planned step, with the files it will rewrite, before anything is read
        or written."""
        return []

    def prepare(self, ctx: RunContext) -> Any:
        return None

    def gather(self, rel: str, rows: list[dict[str, Any]]) -> Any:
        return None

    def combine(self, prepared: Any, parts: Iterable[tuple[str, Any]]) -> None:
        return None

    def up(self, rel: str, data: bytes, prepared: Any) -> UpResult:
        raise NotImplementedError

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        raise NotImplementedError

    def same(self, old: bytes, new: bytes) -> bool:
        """Whether a derived step's new output says nothing more than what it last wrote
        (e.g. only a timestamp moved): the file is then left as it is."""
        return old == new

    def carried_over(self, rel: str, data: bytes, patch: Any) -> bytes | None:
        """A derived step: ``data`` is another writer's save of a file this step wrote
        (``patch``: what it last did). If the save shows they read this step's output, the
        bytes with this step's values they carried over taken out; None: not theirs to
        tell (the file is taken as they wrote it)."""
        return None

    def down_rewritten(
        self, rel: str, data: bytes, patch: Any
    ) -> tuple[bytes, Counter[str]] | None:
        """``down`` for bytes another writer rewrote since this step wrote the file: what
        of this step's change can go back without losing theirs, with counts of what
        went back and what stayed; None (the default): the file is theirs now and stays
        as they wrote it. Raises ValueError where it cannot tell (``down`` refuses)."""
        return None

    def summary(self, prepared: Any, totals: Counter[str]) -> list[str]:
        """Extra lines for the run summary (e.g. evidence per source)."""
        return []
