"""What a migration step is: an id, a description, and a pure ``up``/``down`` per file."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
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
    #: True/False when the step itself proved, line by line, whether ``down`` rebuilds the
    #: exact input; None lets the engine run ``down`` on the whole file to find out.
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


class Step:
    #: record files ``up`` leaves unchanged in the ledger (before == after), for a step whose
    #: ``down_unrecorded`` converts files it has no record of
    records_unchanged: bool = False
    #: which files ``files`` lists ("failures", "queues"): two steps of one family rewrite
    #: the same files, so the engine keeps what the first replaced for the second to reuse
    family: str = ""
    id: str = ""
    name: str = ""
    description: str = ""

    def files(self, repo: DataRepo) -> list[str]:
        """The files this step may rewrite (relative paths)."""
        raise NotImplementedError

    def preflight(self, repo: DataRepo) -> list[Problem]:
        """Problems in the *current* data that would make this step refuse later; the engine
        asks every planned step before the first one writes, so a run refuses up front."""
        return []

    def prepare(self, repo: DataRepo, options: dict[str, Any]) -> Any:
        """Whole-repo context computed once before ``up`` (read-only)."""
        return None

    def up(self, rel: str, data: bytes, ctx: Any) -> UpResult:
        raise NotImplementedError

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        raise NotImplementedError

    def down_unrecorded(self, rel: str, data: bytes) -> bytes | None:
        """``down`` for a file the step never wrote (e.g. added by ``migrate ingest``
        afterwards); None leaves it as it is."""
        return None

    def summary(self, ctx: Any, totals: Counter[str]) -> list[str]:
        """Extra lines for the run summary (e.g. evidence per source)."""
        return []
