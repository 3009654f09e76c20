"""Read failure files and queues into typed lines that know where they came from.

Every line of a failure file is exactly one of: blank, an envelope, a per-recipe line (each
at schema_version 1 or 2, see :mod:`migrate.records`), or bad (with a reason). Nothing is
dropped silently: ``check`` counts each kind so every line is accounted for. Reading is
per file; nothing holds the whole repo in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from migrate import codec
from migrate.models import (
    LINE_MODELS,
    BatchResults,
    LegacyQueueV1,
    LegacyQueueV2,
    UnifiedQueueV1,
    UnifiedQueueV2,
)
from migrate.records import shape_of

SUPPORTED_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Problem:
    """One violation: ``file:line: field: reason`` (field may be empty)."""

    file: str
    line: int
    reason: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:" if self.line else f"{self.file}:"
        return f"{where} {self.field}: {self.reason}" if self.field else f"{where} {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class ParsedLine:
    """One line of a failure file. ``shape`` is None for a blank line or a bad one (then
    ``problems`` says why); ``obj`` is the decoded line, ``notes`` its unknown keys."""

    lineno: int
    raw: bytes
    shape: str | None = None
    version: int | None = None
    obj: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return self.shape is None and not self.problems


def split_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the ``\\n``) for every line, blank ones included.

    A final newline does not start a new line; a missing one does not lose the last line.
    """
    if not data:
        return
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    yield from enumerate(parts, start=1)


def join_lines(lines: list[bytes]) -> bytes:
    """Lines (without ``\\n``) back into file bytes, each ending with a newline."""
    return b"\n".join([*lines, b""])


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_problems(
    file: str, line: int, exc: ValidationError, prefix: str = ""
) -> list[Problem]:
    probs = []
    for err in exc.errors(include_url=False):
        path = field_path(tuple(err["loc"]))
        if prefix:
            path = prefix + ("." + path if path and not path.startswith("[") else path)
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            shown = repr(err["input"])
            reason += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        probs.append(Problem(file, line, reason, path or "-"))
    return probs


def line_version(obj: dict[str, Any]) -> int:
    """The line's ``schema_version``; raises ValueError with the reason when unsupported."""
    version = obj.get("schema_version")
    if version is None:
        raise ValueError("no schema_version: not a failure record")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"schema_version must be an integer, got {version!r}")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"schema_version {version} is not supported (this tool reads 1 and 2;"
            " a newer migrate may have written it)"
        )
    return version


def unknown_keys(file: str, lineno: int, model: BaseModel) -> list[Problem]:
    """A note per key no model declares (carried through untouched, never refused)."""
    out = [
        Problem(file, lineno, "unknown key, carried through untouched", key)
        for key in model.model_extra or {}
    ]
    items = model.failures if "failures" in type(model).model_fields else []
    for i, item in enumerate(items):
        out.extend(
            Problem(file, lineno, "unknown key, carried through untouched", f"failures[{i}].{key}")
            for key in item.model_extra or {}
        )
    return out


def parse_line(
    file: str, lineno: int, raw: bytes, decode=codec.loads, notes: bool = True
) -> ParsedLine:
    """Decode one non-blank line and validate it against the model of its shape and version
    (``decode``: :func:`migrate.codec.loads_trusted` for a line the run itself wrote;
    ``notes``: whether to name its unknown keys)."""
    out = ParsedLine(lineno, raw)
    try:
        obj = decode(raw)
        shape = shape_of(obj)
        version = line_version(obj)
    except (codec.DecodeError, ValueError) as exc:
        out.problems.append(Problem(file, lineno, str(exc)))
        return out
    try:
        model = LINE_MODELS[(shape, version)].model_validate(obj)
    except ValidationError as exc:
        out.problems.extend(validation_problems(file, lineno, exc))
        return out
    out.shape, out.version, out.obj = shape, version, obj
    if notes:
        out.notes = unknown_keys(file, lineno, model)
    return out


def iter_failure_lines(file: str, data: bytes) -> Iterator[ParsedLine]:
    """Every line of a failure file; blank lines come back with ``shape=None`` and no problem."""
    for lineno, raw in split_lines(data):
        if not raw.strip():
            yield ParsedLine(lineno, raw)
        else:
            yield parse_line(file, lineno, raw)


# --------------------------------------------------------------------------- queues

QueueKind = Literal["legacy", "unified", "batch-results"]


def queue_kind(obj: Any) -> QueueKind:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "packages" in obj:
        return "legacy"
    if "entries" in obj:
        return "unified"
    if "batch_id" in obj:
        return "batch-results"
    raise ValueError("unknown queue shape: no 'packages', 'entries' or 'batch_id'")


QUEUE_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    ("legacy", 1): LegacyQueueV1,
    ("legacy", 2): LegacyQueueV2,
    ("unified", 1): UnifiedQueueV1,
    ("unified", 2): UnifiedQueueV2,
}


def element_lines(text: str, key: str) -> list[int]:
    """1-based line numbers where each element of the top-level array ``key`` starts.

    Used only to point violations at a line of an indented queue file.
    """
    lines: list[int] = []
    depth = 0
    in_str = esc = False
    line = 1
    target_depth = None
    i = 0
    key_token = f'"{key}"'
    n = len(text)
    while i < n:
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            if depth == 1 and target_depth is None and text.startswith(key_token, i):
                target_depth = -1  # array comes next
            in_str = True
        elif ch in "[{":
            if target_depth == -1 and ch == "[":
                target_depth = depth + 1
            elif target_depth is not None and depth == target_depth:
                lines.append(line)
            depth += 1
        elif ch in "]}":
            depth -= 1
            if target_depth is not None and target_depth > 0 and depth < target_depth:
                target_depth = -2  # done
        if ch == "\n":
            line += 1
        i += 1
    return lines


@dataclass
class ParsedQueue:
    rel: str
    kind: QueueKind | None = None
    version: int | None = None
    obj: Any = None
    model: BaseModel | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The entries when the document has a list of them (else [], and problems say why)."""
        key = {"legacy": "packages", "unified": "entries"}.get(self.kind or "")
        value = self.obj.get(key) if key and isinstance(self.obj, dict) else None
        return value if isinstance(value, list) else []


def conflict_markers(rel: str, data: bytes) -> list[Problem]:
    """The lines of an unresolved git merge conflict in a queue (two writers saved it on
    two branches), with what to do: migrate's merge driver resolves it entry by entry."""
    if not (data.startswith(b"<<<<<<< ") or b"\n<<<<<<< " in data):
        return []  # (one search of the bytes: a queue is 1.4 MB)
    lines = data.decode("utf-8", "replace").split("\n")
    out = [
        n
        for n, x in enumerate(lines, 1)
        if x.startswith(("<<<<<<< ", ">>>>>>> ", "||||||| ")) or x == "======="
    ]
    return [
        Problem(
            rel,
            out[0],
            "an unresolved git merge conflict (markers at line(s)"
            f" {', '.join(map(str, out[:6]))}): resolve it entry by entry with `migrate"
            f" merge-driver --resolve {rel}`, which keeps every value the other writer set"
            " (`migrate merge-driver --install` makes git do that at every merge)",
        )
    ]


def parse_queue(rel: str, data: bytes) -> ParsedQueue:
    """Decode and validate a queue file, at its own version (tsuku's struct keeps the
    version as read, so a queue at 1 or 2 is its writer's, whatever the repo's version)."""
    out = ParsedQueue(rel)
    markers = conflict_markers(rel, data)
    if markers:
        out.problems.extend(markers)
        return out
    try:
        out.obj = codec.loads(data)
        out.kind = queue_kind(out.obj)
    except (codec.DecodeError, ValueError) as exc:  # (at the line the decoder stopped)
        out.problems.append(Problem(rel, getattr(exc, "lineno", 1), str(exc)))
        return out
    if out.kind == "batch-results":
        try:
            out.model = BatchResults.model_validate(out.obj)
        except ValidationError as exc:
            out.problems.extend(validation_problems(rel, 1, exc))
        return out
    version = out.obj.get("schema_version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        out.problems.append(
            Problem(rel, 1, f"unsupported queue schema_version {version!r}", "schema_version")
        )
        return out
    out.version = version
    try:
        out.model = QUEUE_MODELS[(out.kind, version)].model_validate(out.obj)
    except ValidationError as exc:
        out.problems.extend(queue_problems(rel, data, out.kind, exc))
    return out


def queue_problems(rel: str, data: bytes, kind: str, exc: ValidationError) -> list[Problem]:
    """Validation problems of a queue, each pointed at the line where its entry starts."""
    starts: list[int] | None = None
    key = "packages" if kind == "legacy" else "entries"
    out = []
    for prob in validation_problems(rel, 1, exc):
        line = 1
        if prob.field.startswith(key + "["):
            if starts is None:
                starts = element_lines(data.decode("utf-8"), key)
            idx = int(prob.field[len(key) + 1 : prob.field.index("]")])
            if idx < len(starts):
                line = starts[idx]
        out.append(Problem(rel, line, prob.reason, prob.field))
    return out
