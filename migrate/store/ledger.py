"""The ledger: what each run did, committed with the data, one file per run (format 3).

Layout (JSON Lines, readable in a git diff)::

    data/.migrate/runs/<run id>.jsonl     one file per run, never rewritten
        line 1   {"format": 3, "run", "kind": "up"|"down", "at", "tool_version",
                  "from", "to", "steps", "options", "counts", "entries", "sum"}
        line 2+  (up runs) one per file a step changed:
                 {"path", "steps": [step id, ...], "patch"?: {step id: patch}}
                 or {"path", "gone": true}: another writer deleted it, forgotten

A ledger keeps what correctness needs and nothing a run can recompute: which steps
changed which file, and what a step's ``down`` cannot rebuild from the bytes it left (its
patch; for the queue step, the statuses it changed). It keeps no checksum of any file: a
failure file's content says its version (a v1 line needs the steps, a v2 line has had
them), a queue's statuses say whether they are derived (step 0003 has nothing to change),
git holds every byte the tool left, and a run's staging archive carries what finishing a
killed run needs. A down run's file is its header alone.

A file's state is folded from the runs in order (:class:`LedgerState`): an up run's
record adds its steps to the file's; a record applying the first step of the file's
family (step 0001: the file was taken from v1 bytes) starts the file afresh; a derived
step (queue status) stacks one patch per run that changed the queue; a down run takes its
steps off every file. Runs are ordered by id (their number, start time, a random part),
so runs made on two git branches sit side by side and merge without a conflict.

The header seals the lines after it (``entries``: how many, ``sum``: their sha256; a CRLF
checkout seals the same): a run file cut short or edited by hand is refused by every
command. Every format migrate ever wrote is read (:mod:`.upgrade`: format 2, migrate 0.3).

Crash safety: a run's file is written as ``<id>.jsonl.pending`` (complete, durable) before
any data file is replaced, and renamed to ``<id>.jsonl`` once every one is: a pending run
is the only unfinished state, and the next run finishes it (:mod:`.staging`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from migrate import clock, codec
from migrate.errors import LedgerError
from migrate.layout import LEDGER_DIR, OWNED_PATH, RUNS_DIR

FORMAT = 3
PENDING = ".pending"
_RUN_ID = re.compile(r"^\d{6}-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6}$")


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unreadable(rel: str, why: object, what: str = "") -> LedgerError:
    """The one error for a ledger file that cannot be trusted as it is."""
    return LedgerError(
        f"{rel}: unreadable{what} ({why})",
        hint="restore it from git (git checkout -- data/.migrate)",
    )


@dataclass
class Run:
    """One run's header; its body (the records) is read on demand."""

    id: str
    kind: str  # "up" or "down"
    at: str
    tool_version: str
    from_: str | None
    to: str | None
    steps: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    pending: bool = False
    #: how many record lines follow the header, and their sha256 (:func:`seal`)
    entries: int | None = None
    sum: str | None = None
    format: int = FORMAT

    def header(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "run": self.id,
            "kind": self.kind,
            "at": self.at,
            "tool_version": self.tool_version,
            "from": self.from_,
            "to": self.to,
            "steps": self.steps,
            "options": self.options,
            "counts": self.counts,
            **({"entries": self.entries, "sum": self.sum} if self.sum is not None else {}),
        }

    @property
    def rel(self) -> str:
        return f"{RUNS_DIR}/{self.id}.jsonl" + (PENDING if self.pending else "")


@dataclass
class Applied:
    """One step applied to one file, as the ledger says: the run, the step, its patch."""

    run: str
    step: str
    patch: Any = None


@dataclass
class FileState:
    """What the ledger says of one file: the steps applied to it that are still in place,
    in order, each with its patch. ``after``: the checksum migrate 0.3 recorded of the
    bytes it left (format 2 only; newer runs keep none)."""

    path: str
    applied: list[Applied] = field(default_factory=list)
    after: str | None = None

    @property
    def step_ids(self) -> list[str]:
        return [a.step for a in self.applied]


class LedgerState(dict[str, FileState]):
    """path -> :class:`FileState`, folded over the finished runs (see the module)."""


def record_line(path: str, steps: list[str], patches: dict[str, Any]) -> bytes:
    """An up run's line for one file (``patches``: only the steps that have one)."""
    obj: dict[str, Any] = {"path": path, "steps": steps}
    if patches:
        obj["patch"] = patches
    return codec.dumps_bytes(obj) + b"\n"


def gone_line(path: str) -> bytes:
    """A run's line for a file another writer deleted: the ledger forgets it from then on."""
    return codec.dumps_bytes({"path": path, "gone": True}) + b"\n"


def seal(chunks: list[bytes]) -> tuple[int, str]:
    """(how many lines, sha256 of them) of a run file's record lines, given as written or
    as the body read back. A checkout that turned the lines to CRLF seals the same."""
    h = hashlib.sha256()
    count = 0
    for chunk in chunks:
        if b"\r" in chunk or b"\n\n" in chunk or (chunk and not chunk.endswith(b"\n")):
            for line in chunk.split(b"\n"):
                line = line.rstrip(b"\r")
                if line.strip():
                    h.update(line + b"\n")
                    count += 1
        else:
            h.update(chunk)
            count += chunk.count(b"\n")
    return count, h.hexdigest()


def _sealed_by(version: Any) -> bool:
    """Whether migrate ``version`` sealed its runs (0.3.1 and later)."""
    try:
        return tuple(int(x) for x in str(version).split(".")[:3]) >= (0, 3, 1)
    except ValueError:
        return False


class Ledger:
    """The runs of a data repo, in order. Headers and seals are read when it loads;
    bodies when the state is asked for (a no-op ``up`` needs only the last header)."""

    def __init__(self, store, runs: list[Run], bodies: dict[str, bytes]):
        self.store = store
        self.runs = runs
        self._bodies = bodies  # run id -> the bytes after its header line
        self._state: LedgerState | None = None

    @classmethod
    def load(cls, store) -> Ledger:
        if store.exists(f"{LEDGER_DIR}/ledger.json"):
            raise LedgerError(
                f"{LEDGER_DIR}/ledger.json is a ledger of migrate 0.1 (format 1),"
                " whose v2 lines had another layout",
                hint="roll back with the migrate that wrote it (`migrate down --to base`),"
                " then run this one",
            )
        folder = store.path(RUNS_DIR)
        runs, bodies = [], {}
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                name = p.name
                pending = name.endswith(PENDING)
                run_id = name.removesuffix(PENDING).removesuffix(".jsonl")
                if not name.removesuffix(PENDING).endswith(".jsonl") or not _RUN_ID.match(run_id):
                    continue  # (migrate 0.3's gather index beside a run, or a stray file)
                run, body = _read_run(store, f"{RUNS_DIR}/{name}", pending)
                runs.append(run)
                bodies[run.id] = body
        runs.sort(key=lambda r: r.id)
        return cls(store, runs, bodies)

    # ------------------------------------------------------------------ queries

    @property
    def finished(self) -> list[Run]:
        return [r for r in self.runs if not r.pending]

    @property
    def pending(self) -> Run | None:
        """The run a killed process left unfinished, if any."""
        found = [r for r in self.runs if r.pending]
        return found[-1] if found else None

    @property
    def current(self) -> str | None:
        """The step the repo is at: the target of the last finished run (None: base)."""
        done = self.finished
        return done[-1].to if done else None

    def last_up_options(self) -> dict[str, Any] | None:
        """The options of the last finished up run (None: no up run)."""
        ups = [r for r in self.finished if r.kind == "up"]
        return ups[-1].options if ups else None

    def records(self, run: Run) -> list[dict[str, Any]]:
        """A run's record lines, decoded (format 2 runs: translated, :mod:`.upgrade`)."""
        from migrate.store.upgrade import records_of_format2

        body = self._bodies[run.id]
        try:
            objs = [codec.loads_trusted(line) for line in body.splitlines() if line.strip()]
            for obj in objs:
                if not isinstance(obj.get("path"), str) or not OWNED_PATH.match(obj["path"]):
                    # the ledger is committed data: a path outside the files migrate owns
                    # would let an edited ledger make `down` write anywhere
                    raise ValueError(f"path {obj.get('path')!r} is not a file migrate writes")
            return records_of_format2(objs) if run.format == 2 else objs
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise unreadable(run.rel, exc) from None

    def state(self, registry=None) -> LedgerState:
        """Each file's state folded over the finished runs (see the module)."""
        if self._state is None:
            from migrate.steps import REGISTRY

            self._state = fold(self, registry or REGISTRY)
        return self._state

    # ------------------------------------------------------------------ writes

    def new_run_id(self) -> str:
        """The run's number (one more than the ledger's last), its start time and a random
        part: sorted in the order the runs were made, unique across git branches."""
        seq = int(self.runs[-1].id[:6]) + 1 if self.runs else 1
        return f"{seq:06d}-{clock.now().strftime('%Y-%m-%dT%H-%M-%SZ')}-{secrets.token_hex(3)}"

    def write_pending(self, run: Run, lines: list[bytes]) -> None:
        """The run's file, complete and durable, as pending (before any data file moves)."""
        run.pending = True
        run.entries, run.sum = seal(lines)
        self.store.own_folder()
        self.store.write_atomic(run.rel, [codec.dumps_bytes(run.header()) + b"\n", *lines])
        self.runs.append(run)
        self._bodies[run.id] = b"".join(lines)
        self._state = None

    def finish(self, run: Run) -> None:
        """Every data file of ``run`` is in place: the run is committed."""
        pending = self.store.path(run.rel)
        run.pending = False
        self.store.rename(pending, self.store.path(run.rel))
        self._state = None

    def remove_all(self) -> None:
        """At base migrate's folder does not exist."""
        self.store.remove_own_folder()
        self.runs, self._bodies, self._state = [], {}, None


def _read_run(store, rel: str, pending: bool) -> tuple[Run, bytes]:
    data = store.read_bytes(rel)
    first, _, body = data.partition(b"\n")
    try:
        head = codec.loads(first)
        fmt = head["format"]
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise TypeError("format is not an integer")
        if fmt > FORMAT:
            raise LedgerError(
                f"{rel}: ledger format {fmt} was written by a newer migrate"
                f" ({head.get('tool_version')}; this one reads formats 2 and {FORMAT})",
                hint=f"install migrate {head.get('tool_version')} or newer",
            )
        if not isinstance(head["steps"], list) or not all(
            isinstance(x, str) for x in head["steps"]
        ):
            raise TypeError("steps is not a list of step ids")
        run = Run(
            head["run"],
            head["kind"],
            head["at"],
            head["tool_version"],
            head["from"],
            head["to"],
            list(head["steps"]),
            head.get("options") or {},
            head.get("counts") or {},
            pending,
            head.get("entries"),
            head.get("sum"),
            fmt,
        )
    except LedgerError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise unreadable(rel, exc, " ledger run") from None
    if run.sum is None and _sealed_by(run.tool_version):
        raise unreadable(
            rel,
            f"written by migrate {run.tool_version}, which seals its runs, and its header"
            " has no seal: edited by hand",
        )
    if run.sum is not None and seal([body]) != (run.entries, run.sum):
        raise unreadable(
            rel, "its lines are not those its header seals: cut short or edited by hand"
        )
    return run, body


def fold(ledger: Ledger, registry) -> LedgerState:
    """Each file's state over the finished runs, in order (see the module)."""
    out = LedgerState()
    for run in ledger.finished:
        if run.kind == "down":
            gone = set(run.steps)
            for fs in out.values():
                fs.applied = [a for a in fs.applied if a.step not in gone]
            continue
        for rec in ledger.records(run):
            path = rec["path"]
            if rec.get("gone"):
                out.pop(path, None)
                continue
            patches = rec.get("patch") or {}
            if rec.get("full"):  # (a state as migrate 0.3 recorded it: the whole of it)
                applied = [Applied(run.id, sid, patches.get(sid)) for sid in rec["steps"]]
                out[path] = FileState(path, applied, rec.get("after"))
                continue
            fs = out.setdefault(path, FileState(path))
            for sid in rec["steps"]:
                step = registry.get(sid)
                if step is not None and registry.first_of_family(step) and not step.derived:
                    fs.applied, fs.after = [], None  # taken from v1 bytes: starts afresh
                fs.applied.append(Applied(run.id, sid, patches.get(sid)))
    return out
