"""JSON codec that reads strictly and writes bytes identical to tsuku's Go and jq writers.

Upstream lines are Go ``json.Marshal`` output (compact, raw UTF-8, ``<``, ``>``, ``&``,
U+2028 and U+2029 escaped); queues are ``json.MarshalIndent(v, "", "  ")`` plus a final
newline. ``dumps_line`` / ``dumps_queue`` reproduce every line and queue in the real
corpus byte for byte (tests/test_codec.py checks that on ``../shared/corpus``).

Decoding is stricter than :func:`json.loads`: NaN/Infinity and duplicate keys are
rejected, because Go never writes them and accepting them would make a round trip lossy.
"""

from __future__ import annotations

import json
from json import encoder as _encoder
from typing import Any

_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))
_LINE_SEP_ESCAPES = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class DecodeError(ValueError):
    """A line or file that is not valid JSON for this tool; ``str()`` is the user-facing reason."""


def _go_escape(text: str, escape_html: bool) -> str:
    for raw, esc in (_HTML_ESCAPES + _LINE_SEP_ESCAPES) if escape_html else _LINE_SEP_ESCAPES:
        if raw in text:
            text = text.replace(raw, esc)
    return text


def _default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: One compact encoder built once: ``json.dumps`` builds a new one per call, which costs as
#: much as encoding a short record. Same output as ``json.dumps(obj, separators=(",", ":"),
#: ensure_ascii=False, allow_nan=False)`` (tests/test_codec.py compares them).
_COMPACT = (
    _encoder.c_make_encoder(
        None, _default, _encoder.c_encode_basestring, None, ":", ",", False, False, False
    )
    if _encoder.c_make_encoder is not None and _encoder.c_encode_basestring is not None
    else None
)
_COMPACT_PY = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps_line(obj: Any, escape_html: bool = True) -> str:
    """One compact JSON line (no newline), as Go's json.Marshal writes it."""
    # _COMPACT_PY: an interpreter without the C accelerator
    text = "".join(_COMPACT(obj, 0)) if _COMPACT is not None else _COMPACT_PY.encode(obj)
    return _go_escape(text, escape_html)


def dumps_queue(obj: Any, escape_html: bool = True) -> str:
    """A queue document, 2-space indented like Go's MarshalIndent, with a final newline.

    The legacy homebrew queue was written without HTML escaping (its tier labels hold a
    raw ``>``); pass ``escape_html=False`` for such files (see :func:`escapes_html`).
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    return _go_escape(text, escape_html) + "\n"


def escapes_html(text: str) -> bool:
    """Whether an existing document was written with Go's HTML escaping.

    A raw ``<``, ``>`` or ``&`` proves it was not; otherwise Go's default is assumed.
    """
    return not any(raw in text for raw, _ in _HTML_ESCAPES)


def _no_constants(name: str) -> Any:
    raise DecodeError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"duplicate key {key!r}")
            seen.add(key)
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def loads_own(data: bytes | str) -> Any:
    """Decode a line this tool wrote itself (a v2 record, a ledger line): the fast C path.

    Input from outside (v1 lines, queues, evidence, anything ``check`` validates) goes
    through the strict :func:`loads`; a v2 line edited by hand since is caught by the
    ledger checksums and by each step's round-trip verification.
    """
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:  # the scanner straight away: these lines have no surrounding whitespace
        obj, end = _SCAN(text, 0)
    except StopIteration:
        return _FAST.decode(text)  # raises the usual JSONDecodeError
    if end != len(text):
        return _FAST.decode(text)  # trailing whitespace is fine, anything else raises
    return obj


_FAST = json.JSONDecoder()
_SCAN = _FAST.scan_once


def loads(data: bytes | str) -> Any:
    """Decode one JSON document strictly. Raises :class:`DecodeError` with a readable reason."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise DecodeError("starts with a UTF-8 byte-order mark")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 at byte {exc.start}") from None
    else:
        text = data
    if "\x00" in text:
        raise DecodeError("contains a NUL byte")
    try:
        return _DECODER.decode(text)
    except DecodeError:
        raise
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
