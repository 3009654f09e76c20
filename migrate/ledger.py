"""The ledger: what each run did to each file, committed with the data, one file per run.

Layout (JSON Lines, readable in a git diff)::

    data/.migrate/runs/<run id>.jsonl     one file per run, never rewritten
        line 1   {"format": 2, "run", "kind": "up"|"down", "at", "tool_version",
                  "from", "to", "steps", "options", "counts", "entries", "sum"}
        line 2+  one per file the run wrote or looked at:
                 {"path", "origin", "at"?,
                  "steps": [{"id", "before"?, "after"?, "patch"?, "restore"?,
                             "inputs"?}, ...]}
                 or {"path", "gone": true}: another writer deleted it, forgotten

The header seals the lines after it (``entries``: how many, ``sum``: their sha256; a CRLF
checkout seals the same): a run file cut short or edited by hand is refused by every
command, never read as a run that wrote fewer files. Runs of migrate 0.3.0 have no seal.

A file's entry is its whole state after the run: ``origin`` is the checksum of its bytes
before any step, ``at`` the last step whose version those bytes already had (absent: base),
``steps`` the steps applied to it in order, each with the checksum of the bytes it left
(absent: the same as it was given), the patch its ``down`` needs, and where that ``down``
could not rebuild the bytes before the step those bytes (``restore``), and for a derived
step (queue status) the checksum of the failure files it derived from (``inputs``). A
file another writer added or rewrote since a run starts again from its new bytes: its new
``origin`` is theirs (``before``, the checksum of what a step was given, is read for
ledgers written before that rule).

The state of a file is its entry in the latest run that has one. Runs are ordered by id
(their number, start time, then a random part), so runs made on two git branches sit side
by side and merge without a conflict; after such a merge (two runs with one number) a
file may hold the bytes the *other* branch's run left: :meth:`Ledger.state_left` finds
that entry among the runs since the branches parted.

Crash safety: a run's file is written as ``<id>.jsonl.pending`` (complete, durable) before
any data file is replaced, and renamed to ``<id>.jsonl`` once every one is: a pending run
is the only unfinished state, and the next run finishes it. At base (nothing applied) the
folder does not exist.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from migrate import clock, codec
from migrate.errors import LedgerError
from migrate.repo import LEDGER_DIR, DataRepo

FORMAT = 2
RUNS_DIR = f"{LEDGER_DIR}/runs"
PENDING = ".pending"
#: The only files an entry may name: failure files and queues (no folders, no "..").
OWNED_PATH = re.compile(
    r"^data/(failures/[^/\\]+\.jsonl|queues/[^/\\]+\.json|priority-queue\.json)$"
)
_RUN_ID = re.compile(r"^\d{6}-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6}$")


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class StepState:
    id: str
    after: str | None = None  # None: the step left the bytes as they were
    patch: Any = None
    #: the bytes before the step, where its ``down`` could not rebuild them
    restore: bytes | None = None
    #: the checksum of the bytes the step was given, where another writer had changed them
    #: since the previous step (None: what the previous step left)
    before: str | None = None
    #: a derived step: the checksum of the failure files it derived from (:func:`inputs`)
    inputs: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.before is not None:
            out["before"] = self.before
        if self.after is not None:
            out["after"] = self.after
        if self.patch is not None:
            out["patch"] = self.patch
        if self.inputs is not None:
            out["inputs"] = self.inputs
        if self.restore is not None:
            try:
                out["restore"] = {"text": self.restore.decode("utf-8")}
            except UnicodeDecodeError:
                out["restore"] = {"base64": base64.b64encode(self.restore).decode("ascii")}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StepState:
        restore = obj.get("restore")
        raw = None
        if restore is not None:
            raw = (
                restore["text"].encode("utf-8")
                if "text" in restore
                else base64.b64decode(restore["base64"])
            )
        return cls(
            obj["id"], obj.get("after"), obj.get("patch"), raw, obj.get("before"), obj.get("inputs")
        )


@dataclass(slots=True)
class FileState:
    """A file's state after a run: its origin, the steps applied to it, what each left."""

    path: str
    origin: str
    steps: list[StepState] = field(default_factory=list)
    #: the last step whose version the origin's content already had (a file another
    #: writer added at v2): ``down`` never takes the file below it
    at: str | None = None

    def checksums(self) -> list[tuple[str, str]]:
        """(checksum of the bytes each step was given, checksum of the bytes it left)."""
        out, cur = [], self.origin
        for st in self.steps:
            given = st.before or cur
            cur = st.after or given
            out.append((given, cur))
        return out

    @property
    def after(self) -> str:
        """The checksum of the bytes the last step left."""
        sums = self.checksums()
        return sums[-1][1] if sums else self.origin

    @property
    def step_ids(self) -> list[str]:
        return [st.id for st in self.steps]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "origin": self.origin}
        if self.at is not None:
            out["at"] = self.at
        out["steps"] = [st.to_json() for st in self.steps]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FileState:
        if not isinstance(obj.get("path"), str) or not OWNED_PATH.match(obj["path"]):
            # the ledger is committed data: a path outside the files migrate owns would let
            # an edited ledger make `down` write anywhere
            raise ValueError(f"path {obj.get('path')!r} is not a file migrate writes")
        return cls(
            obj["path"],
            obj["origin"],
            [StepState.from_json(s) for s in obj["steps"]],
            obj.get("at"),
        )


@dataclass
class Run:
    """One run's header (its files are read on demand: :meth:`Ledger.files`)."""

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
    #: how many entry lines follow the header, and their sha256 (:func:`seal`): a run file
    #: cut short or edited by hand is refused, not read as "fewer files" (None: written
    #: by migrate 0.3.0 or older, which did not seal its runs)
    entries: int | None = None
    sum: str | None = None

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
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


#: an entry's path, as this module writes it (no escapes in it)
_ENTRY_PATH = re.compile(rb'^\{"path":"([^"\\]+)"')


def _unreadable(rel: str, why: object, what: str = "") -> LedgerError:
    """The one error for a ledger file that cannot be trusted as it is."""
    return LedgerError(
        f"{rel}: unreadable{what} ({why})",
        hint="restore it from git (git checkout -- data/.migrate)",
    )


def _path_of(rel: str, line: bytes) -> str:
    try:
        path = codec.loads_trusted(line)["path"]
        if not isinstance(path, str):
            raise TypeError("path is not a string")
        return path
    except (ValueError, KeyError, TypeError) as exc:
        raise _unreadable(rel, exc) from None


class Summary(NamedTuple):
    """What a file's state says of the bytes the tool left and how it got there."""

    after: str  # the checksum of the bytes the last step left
    ids: tuple[str, ...]  # the steps applied, in order
    at: str | None  # the last step whose version its origin already had
    inputs: tuple[tuple[str, str | None], ...]  # (step id, inputs) per step

    @classmethod
    def of(cls, fs: FileState) -> Summary:
        return cls(fs.after, tuple(fs.step_ids), fs.at, tuple((s.id, s.inputs) for s in fs.steps))


class States(Mapping[str, FileState]):
    """path -> :class:`FileState`, decoded from its entry line each time it is asked for
    (callers ask once per file and keep what they need: memory follows the lines)."""

    def __init__(self) -> None:
        self.raw: dict[str, tuple[bytes, str]] = {}  # path -> (its entry line, run file)

    def __getitem__(self, path: str) -> FileState:
        line, rel = self.raw[path]
        try:
            return FileState.from_json(codec.loads_trusted(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise _unreadable(rel, exc) from None

    def summary(self, path: str) -> Summary | None:
        """What the plan needs of a file's state (:class:`Summary`), without building the
        state: the scan asks it of every file (57,000 full decodes cost 0.6 s a run)."""
        got = self.raw.get(path)
        if got is None:
            return None
        line, rel = got
        try:
            obj = codec.loads_trusted(line)
            after = obj["origin"]
            ids, inputs = [], []
            for st in obj["steps"]:
                after = st.get("after") or st.get("before") or after
                ids.append(st["id"])
                inputs.append((st["id"], st.get("inputs")))
            return Summary(after, tuple(ids), obj.get("at"), tuple(inputs))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _unreadable(rel, exc) from None

    def __contains__(self, path: object) -> bool:
        return path in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def new_run_id(ledger: Ledger) -> str:
    """The run's number (one more than the ledger's last), its start time and a random
    part: sorted in the order the runs were made, unique across git branches."""
    seq = int(ledger.runs[-1].id[:6]) + 1 if ledger.runs else 1
    return f"{seq:06d}-{clock.now().strftime('%Y-%m-%dT%H-%M-%SZ')}-{secrets.token_hex(3)}"


def _lines(data: bytes) -> list[Any]:
    """A run file's lines (this tool's own JSON: decoded by orjson, line by line; through
    ``jsonlines`` the reader's own work cost 0.3 s per 57,000 files, a tenth of a
    catch-up run)."""
    return [codec.loads_trusted(line) for line in data.splitlines() if line.strip()]


class Ledger:
    """The runs of a data repo, in order; all writes go through the repo, atomically."""

    def __init__(self, repo: DataRepo, runs: list[Run]):
        self.repo = repo
        self.runs = runs
        self._states: States | None = None
        self._left: dict[tuple[str, str], FileState] | None = None

    @classmethod
    def load(cls, repo: DataRepo) -> Ledger:
        if repo.exists(f"{LEDGER_DIR}/ledger.json"):
            raise LedgerError(
                f"{LEDGER_DIR}/ledger.json is a ledger of migrate 0.1 (format 1),"
                " whose v2 lines had another layout",
                hint="roll back with the migrate that wrote it (`migrate down --to base`),"
                " then run this one",
            )
        folder = repo.path(RUNS_DIR)
        runs = []
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                name = p.name
                pending = name.endswith(PENDING)
                run_id = name.removesuffix(PENDING).removesuffix(".jsonl")
                if not name.removesuffix(PENDING).endswith(".jsonl") or not _RUN_ID.match(run_id):
                    continue  # (a temporary file of an interrupted write, cleaned by writers)
                runs.append(cls._header(repo, f"{RUNS_DIR}/{name}", pending))
        runs.sort(key=lambda r: r.id)
        return cls(repo, runs)

    @staticmethod
    def _header(repo: DataRepo, rel: str, pending: bool) -> Run:
        data = repo.read_bytes(rel)
        first, _, body = data.partition(b"\n")
        try:
            head = codec.loads(first)
            fmt = head["format"]
            if not isinstance(fmt, int):
                raise TypeError("format is not an integer")
            if not isinstance(head["steps"], list) or not all(
                isinstance(x, str) for x in head["steps"]
            ):
                raise TypeError("steps is not a list of step ids")
            if fmt > FORMAT:
                raise LedgerError(
                    f"{rel}: ledger format {fmt} was written by a newer migrate"
                    f" ({head.get('tool_version')}; this one reads format {FORMAT})",
                    hint=f"install migrate {head.get('tool_version')} or newer",
                )
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
            )
            if run.sum is None and _sealed_by(run.tool_version):
                raise _unreadable(
                    rel,
                    f"written by migrate {run.tool_version}, which seals its runs, and its"
                    " header has no seal: edited by hand",
                )
            if run.sum is not None and seal([body]) != (run.entries, run.sum):
                raise _unreadable(
                    rel, "its lines are not those its header seals: cut short or edited by hand"
                )
            return run
        except LedgerError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise _unreadable(rel, exc, " ledger run") from None

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

    def files(self, run: Run) -> list[FileState]:
        """The states a run's file gives (the files it forgot as deleted left out)."""
        data = self.repo.read_bytes(run.rel)
        try:
            return [FileState.from_json(obj) for obj in _lines(data)[1:] if "gone" not in obj]
        except (ValueError, KeyError, TypeError) as exc:
            raise _unreadable(run.rel, exc) from None

    def states(self) -> States:
        """Each file's state: its entry in the latest finished run that has one (decoded
        when asked for: a ``down`` decodes each in the process that reverts the file)."""
        if self._states is None:
            out = States()
            for run in self.finished:
                data = self.repo.read_bytes(run.rel)
                for line in data.split(b"\n")[1:]:
                    if not line.strip():
                        continue
                    m = _ENTRY_PATH.match(line)
                    path = m.group(1).decode() if m else _path_of(run.rel, line)
                    if not OWNED_PATH.match(path):
                        raise _unreadable(run.rel, f"path {path!r} is not a file migrate writes")
                    if line.rstrip().endswith(_GONE):  # deleted by another writer: forgotten
                        out.raw.pop(path, None)
                    else:
                        out.raw[path] = (line, run.rel)
            self._states = out
        return self._states

    def state_left(self, path: str, digest: str) -> FileState | None:
        """After a merge of two branches that each ran: the entry of a run made since they
        parted that left ``path`` with the bytes ``digest`` (None: no such run, or no
        merge: a linear history numbers its runs one by one). The runs since the fork
        are read once per ledger, on the first question."""
        if self._left is None:
            done = self.finished
            seen: set[str] = set()
            twice = {r.id[:6] for r in done if r.id[:6] in seen or seen.add(r.id[:6])}
            self._left = {}
            for run in reversed([r for r in done if twice and r.id[:6] >= min(twice)]):
                for fs in self.files(run):
                    self._left.setdefault((fs.path, fs.after), fs)  # (the latest wins)
        return self._left.get((path, digest))

    # ------------------------------------------------------------------ writes

    def write_pending(self, run: Run, entries: list[bytes]) -> None:
        """The run's file, complete and durable, as pending (before any data file moves).
        ``entries``: each file's line (``entry_line``)."""
        run.pending = True
        run.entries, run.sum = seal(entries)
        # (written line by line: the lines of 57,000 files are not copied into one body)
        self.repo.write_atomic(run.rel, [codec.dumps_bytes(run.header()) + b"\n", *entries])
        self.runs.append(run)
        self._states = self._left = None

    def finish(self, run: Run) -> None:
        """Every data file of ``run`` is in place: the run is committed."""
        pending = self.repo.path(run.rel)
        run.pending = False
        self.repo.rename(pending, self.repo.path(run.rel))
        self._states = self._left = None

    def drop(self, run: Run) -> None:
        self.repo.remove(run.rel)
        self.runs.remove(run)
        self._states = self._left = None

    def remove_all(self) -> None:
        """At base the folder does not exist."""
        self.repo.remove_tree(LEDGER_DIR)
        self.runs = []
        self._states = self._left = None


def _sealed_by(version: Any) -> bool:
    """Whether migrate ``version`` sealed its runs (0.3.1 and later)."""
    try:
        return tuple(int(x) for x in str(version).split(".")[:3]) >= (0, 3, 1)
    except ValueError:
        return False


def seal(chunks: list[bytes]) -> tuple[int, str]:
    """(how many lines, sha256 of them) of a run file's entry lines, given as written or as
    the body read back. A checkout that turned the lines to CRLF seals the same."""
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


def inputs(digests: dict[str, str]) -> str:
    """One checksum of a set of files (path -> checksum): what a derived step derived from.
    Whatever changed them (a batch, a merge of two branches), a different value."""
    h = hashlib.sha256()
    for rel in sorted(digests):
        h.update(f"{rel}\0{digests[rel]}\n".encode())
    return h.hexdigest()


_GONE = b',"gone":true}'


def gone_line(path: str) -> bytes:
    """A run's line for a file another writer deleted: the ledger forgets it from then on."""
    return codec.dumps_bytes({"path": path, "gone": True}) + b"\n"


def entry_line(fs: FileState) -> bytes:
    """A file's line in a run's file."""
    return codec.dumps_bytes(fs.to_json()) + b"\n"
