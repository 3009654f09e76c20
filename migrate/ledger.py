"""The ledger: which steps are applied to a data repo, and what their ``down`` needs.

Layout, committed with the data and readable in a git diff::

    data/.migrate/ledger.json          {"format": 1, "steps": [...]}, 2-space indented
    data/.migrate/<id>-<name>.jsonl    one line per file the step wrote:
                                       {"path", "before", "after", "patch"?, "restore"?}

``before``/``after`` are sha256 checksums of the file's bytes; ``patch`` is what the
step's ``down`` needs besides the new bytes (step 0001: the v1 line layout); ``restore`` holds the
original bytes of a file whose exact bytes the step's ``down`` could not rebuild on its
own (hand edits, other escaping, missing final newline), as text or base64.

A step's entry is written with ``state: "applying"`` (and its detail file complete)
*before* any data file is replaced, and switched to ``"applied"`` after all of them are
durable; a run killed in between is finished by ``up`` or undone by ``down``.
At base (no step applied) the folder does not exist.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from migrate import codec
from migrate.errors import LedgerError
from migrate.repo import LEDGER_DIR, DataRepo

FORMAT = 1
#: The only files a ledger entry may name: failure files and queues (no folders, no "..").
OWNED_PATH = re.compile(
    r"^data/(failures/[^/\\]+\.jsonl|queues/[^/\\]+\.json|priority-queue\.json)$"
)
LEDGER_FILE = f"{LEDGER_DIR}/ledger.json"
State = Literal["applying", "applied", "reverting"]


@dataclass
class FileEntry:
    path: str
    before: str
    after: str
    restore: bytes | None = None
    patch: Any = None

    def to_line(self) -> bytes:
        """This entry's line in the step's detail file."""
        return codec.dumps_bytes(self.to_json()) + b"\n"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "before": self.before, "after": self.after}
        if self.patch is not None:
            out["patch"] = self.patch
        if self.restore is not None:
            try:
                out["restore"] = {"text": self.restore.decode("utf-8")}
            except UnicodeDecodeError:
                out["restore"] = {"base64": base64.b64encode(self.restore).decode("ascii")}
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FileEntry:
        if not isinstance(obj.get("path"), str) or not OWNED_PATH.match(obj["path"]):
            # the ledger is committed data: a path outside the files migrate owns would let
            # an edited ledger make `down` write anywhere
            raise ValueError(f"path {obj.get('path')!r} is not a file migrate writes")
        restore = obj.get("restore")
        raw = None
        if restore is not None:
            raw = (
                restore["text"].encode("utf-8")
                if "text" in restore
                else base64.b64decode(restore["base64"])
            )
        return cls(obj["path"], obj["before"], obj["after"], raw, obj.get("patch"))


@dataclass
class StepEntry:
    id: str
    name: str
    description: str
    state: State
    applied_at: str
    tool_version: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def detail_file(self) -> str:
        return f"{LEDGER_DIR}/{self.id}-{self.name}.jsonl"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "state": self.state,
            "applied_at": self.applied_at,
            "tool_version": self.tool_version,
            "summary": self.summary,
        }


class Ledger:
    """In-memory view of ``data/.migrate``; all writes go through the repo, atomically."""

    def __init__(self, repo: DataRepo, steps: list[StepEntry]):
        self.repo = repo
        self.steps = steps

    @classmethod
    def load(cls, repo: DataRepo) -> Ledger:
        if not repo.exists(LEDGER_FILE):
            # Detail files without ledger.json are leftovers of a run killed while it
            # dropped its last step (ledger.json goes first): the next write cleans them.
            return cls(repo, [])
        try:
            obj = codec.loads(repo.read_bytes(LEDGER_FILE))
            fmt = obj["format"]
            if not isinstance(fmt, int):
                raise TypeError
            if fmt > FORMAT:
                raise LedgerError(
                    f"{LEDGER_FILE}: ledger format {fmt} was written by a newer migrate"
                    f" (this one reads format {FORMAT})",
                    hint="upgrade migrate (pip install -U migrate)",
                )
            steps = [
                StepEntry(
                    s["id"],
                    s["name"],
                    s["description"],
                    s["state"],
                    s["applied_at"],
                    s["tool_version"],
                    s.get("summary", {}),
                )
                for s in obj["steps"]
            ]
        except LedgerError:
            raise
        except (codec.DecodeError, KeyError, TypeError) as exc:
            raise LedgerError(
                f"{LEDGER_FILE}: unreadable ledger ({exc})",
                hint="restore it from git (git checkout -- data/.migrate)",
            ) from None
        return cls(repo, steps)

    # ------------------------------------------------------------------ queries

    @property
    def applied_ids(self) -> list[str]:
        return [s.id for s in self.steps if s.state == "applied"]

    @property
    def current(self) -> str | None:
        ids = self.applied_ids
        return ids[-1] if ids else None

    @property
    def unfinished(self) -> StepEntry | None:
        """The step a killed run left half-done, if any."""
        for s in self.steps:
            if s.state != "applied":
                return s
        return None

    def is_applied(self, step_id: str) -> bool:
        return step_id in self.applied_ids

    def detail_missing(self, entry: StepEntry) -> bool:
        return not self.repo.exists(entry.detail_file)

    def files(self, entry: StepEntry) -> list[FileEntry]:
        if self.detail_missing(entry):
            raise LedgerError(
                f"{entry.detail_file} is missing: step {entry.id} cannot be checked or reverted",
                hint="restore it from git (git checkout -- data/.migrate); never commit"
                " data/.migrate in part",
            )
        from migrate.reader import split_lines

        out = []
        for lineno, raw in split_lines(self.repo.read_bytes(entry.detail_file)):
            try:
                out.append(FileEntry.from_json(codec.loads_own(raw)))
            except (codec.DecodeError, KeyError, TypeError, ValueError) as exc:
                raise LedgerError(f"{entry.detail_file}:{lineno}: unreadable ({exc})") from None
        return out

    # ------------------------------------------------------------------ writes

    def save(self) -> None:
        if not self.steps:
            self.remove_all()
            return
        doc = {"format": FORMAT, "steps": [s.to_json() for s in self.steps]}
        self.repo.write_atomic(LEDGER_FILE, codec.dumps_queue(doc).encode("utf-8"))

    def write_files(
        self, entry: StepEntry, files: list[FileEntry], lines: list[bytes | None] | None = None
    ) -> None:
        """``lines``: each entry's line already encoded (``FileEntry.to_line``), or None."""
        given = lines if lines is not None else [None] * len(files)
        body = b"".join(line or f.to_line() for f, line in zip(files, given, strict=True))
        self.repo.write_atomic(entry.detail_file, body)

    def begin(
        self, entry: StepEntry, files: list[FileEntry], lines: list[bytes | None] | None = None
    ) -> None:
        """ledger.json first (state applying), then the detail file. A run killed between
        the two has replaced no data file yet; the next run drops the entry."""
        self.steps.append(entry)
        self.save()
        self.write_files(entry, files, lines)

    def mark(self, entry: StepEntry, state: State) -> None:
        entry.state = state
        self.save()

    def drop(self, entry: StepEntry) -> None:
        """ledger.json first, then the detail file (an orphan detail file is harmless)."""
        self.steps.remove(entry)
        self.save()
        if self.steps:
            self.repo.remove(entry.detail_file)

    def remove_all(self) -> None:
        """At base the folder does not exist: ledger.json goes first, then the rest."""
        folder = self.repo.path(LEDGER_DIR)
        if folder.exists():
            self.repo.remove(LEDGER_FILE)
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
