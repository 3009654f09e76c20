"""Read failure files and queues into typed records that know where they came from.

Every line of a failure file is exactly one of: blank, Shape A (envelope), Shape B
(per-platform line), a v2 record, or bad (with a reason). Nothing is dropped silently:
:class:`FileScan` counts each kind so a caller can prove every line was accounted for.
Reading is per file; nothing holds the whole repo in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from migrate import codec
from migrate.models import (
    BatchResults,
    EnvelopeV1,
    FailureRecordV2,
    LegacyQueueV1,
    LegacyQueueV2,
    PlatformLineV1,
    UnifiedQueueV1,
    UnifiedQueueV2,
)

Shape = Literal["A", "B", "v2"]
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
    lineno: int
    raw: bytes
    shape: Shape | None = None
    model: EnvelopeV1 | PlatformLineV1 | FailureRecordV2 | None = None
    problems: list[Problem] = field(default_factory=list)
    #: parsed by pydantic's JSON parser, which keeps the last of duplicate keys: only
    #: trusted once the line proves to be canonical bytes (see step 0001)
    fast: bool = False


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
    """Lines (without ``\\n``) back into file bytes, each ending with a newline (one
    join: no second copy of the file to add the last newline)."""
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
        reason = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            shown = repr(err["input"])
            reason += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
        if err["type"] == "extra_forbidden":
            reason = "unknown field"
        probs.append(Problem(file, line, reason, path or "-"))
    return probs


def detect_shape(obj: Any) -> Shape:
    """Which line shape a decoded object is; raises ValueError with the reason if none."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
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
    if version == 2:
        return "v2"
    if "failures" in obj:
        return "A"
    if "recipe" in obj:
        return "B"
    raise ValueError("unknown shape: schema_version 1 line with neither 'failures' nor 'recipe'")


_MODELS: dict[str, type[BaseModel]] = {"A": EnvelopeV1, "B": PlatformLineV1, "v2": FailureRecordV2}


_V2_PREFIX = b'{"schema_version":2,'
_KEY = re.compile(rb'"([a-z_]+)":')
_V2_KEYS = len(FailureRecordV2.model_fields)
_EVIDENCE_KEYS = 5  # source, names, detail, file, line


#: What lets a key escape the ``_KEY`` count: a letter, digit or underscore written as an
#: escape (Go escapes only control characters, ``<``, ``>``, ``&``, U+2028 and U+2029), or
#: blanks before its colon. A line with either takes the strict path.
_ODD_ESCAPE = re.compile(rb"\\u00(?!26|3c|3e)[2-7][0-9a-fA-F]")
_SPACED_KEY = re.compile(rb'"[ \t\r]+:')


def _may_hide_a_key(raw: bytes) -> bool:
    return bool((b"\\u00" in raw and _ODD_ESCAPE.search(raw)) or _SPACED_KEY.search(raw))


def _fast_v2(raw: bytes) -> FailureRecordV2 | None:
    """A canonical v2 line validated straight from its bytes (pydantic's JSON parser), or
    None to take the strict path. pydantic keeps the last of duplicate keys, so each key
    must occur exactly as often as the record has objects holding it; in canonical JSON an
    unescaped ``"key":`` occurs only as a key, and no key can hide from that count
    (:func:`_may_hide_a_key`)."""
    if _may_hide_a_key(raw):
        return None
    try:
        model = FailureRecordV2.model_validate_json(raw)
    except ValidationError:
        return None
    # every object validated, so each of its keys is there: one key too many is a duplicate
    if len(_KEY.findall(raw)) != _V2_KEYS + _EVIDENCE_KEYS * len(model.evidence):
        return None
    return model


def parse_line(file: str, lineno: int, raw: bytes) -> ParsedLine:
    """Decode and validate one non-blank line against the model of its own shape."""
    out = ParsedLine(lineno, raw)
    if raw.startswith(_V2_PREFIX):
        model = _fast_v2(raw)
        if model is not None:
            out.shape, out.model = "v2", model
            return out
    try:
        obj = codec.loads(raw)
    except codec.DecodeError as exc:
        out.problems.append(Problem(file, lineno, str(exc)))
        return out
    try:
        out.shape = detect_shape(obj)
    except ValueError as exc:
        out.problems.append(Problem(file, lineno, str(exc)))
        return out
    try:
        out.model = _MODELS[out.shape].model_validate(obj)
    except ValidationError as exc:
        out.problems.extend(validation_problems(file, lineno, exc))
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


def parse_queue(rel: str, data: bytes, expect_version: int | None = None) -> ParsedQueue:
    """Decode and validate a queue file; ``expect_version`` is the repo's recorded version."""
    out = ParsedQueue(rel)
    try:
        out.obj = codec.loads_queue(data)
        out.kind = queue_kind(out.obj)
    except (codec.DecodeError, ValueError) as exc:
        out.problems.append(Problem(rel, 1, str(exc)))
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
    if expect_version is not None and version != expect_version:
        out.problems.append(
            Problem(
                rel,
                1,
                f"queue is at schema_version {version}, the ledger says {expect_version}",
                "schema_version",
            )
        )
        return out
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
