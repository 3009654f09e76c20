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
from typing import Any

import orjson

_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"))
_LINE_SEP_ESCAPES = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class DecodeError(ValueError):
    """A line or file that is not valid JSON for this tool; ``str()`` is the user-facing reason,
    ``lineno`` the line of the document it was found on (1 when not known)."""

    def __init__(self, reason: str, lineno: int = 1):
        super().__init__(reason)
        self.lineno = lineno


def _go_escape(text: str, escape_html: bool) -> str:
    for raw, esc in (_HTML_ESCAPES + _LINE_SEP_ESCAPES) if escape_html else _LINE_SEP_ESCAPES:
        if raw in text:
            text = text.replace(raw, esc)
    return text


def dumps_bytes(obj: Any, escape_html: bool = True) -> bytes:
    """One compact JSON line (no newline) as UTF-8 bytes, as Go's json.Marshal writes it.

    orjson writes the same compact, key-ordered, raw-UTF-8 form as
    ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`` (tests/test_codec.py
    checks that on generated values), about twice as fast; Go's extra escapes are then
    applied to the bytes. Values orjson refuses (integers beyond 64 bits, non-string keys,
    lone surrogates) go through the standard library, which also refuses NaN and Infinity:
    records and ledger lines never hold floats, so orjson's NaN-as-null never applies.
    """
    try:
        data = orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return dumps_line_stdlib(obj, escape_html).encode("utf-8")
    return _go_escape_bytes(data, escape_html)


def _go_escape_bytes(data: bytes, escape_html: bool) -> bytes:
    # Go's escapes (_HTML_ESCAPES, _LINE_SEP_ESCAPES) on bytes, unrolled: once per line
    if escape_html:
        if b"<" in data:
            data = data.replace(b"<", b"\\u003c")
        if b">" in data:
            data = data.replace(b">", b"\\u003e")
        if b"&" in data:
            data = data.replace(b"&", b"\\u0026")
    if b"\xe2" in data:  # one byte first: U+2028/U+2029 are E2 80 A8/A9
        data = data.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return data


def dumps_line(obj: Any, escape_html: bool = True) -> str:
    """:func:`dumps_bytes` as text."""
    return dumps_bytes(obj, escape_html).decode("utf-8")


_STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps_line_stdlib(obj: Any, escape_html: bool = True) -> str:
    """The reference encoder (the standard library's), for what orjson refuses."""
    return _go_escape(_STDLIB.encode(obj), escape_html)


def dumps_queue(obj: Any, escape_html: bool = True) -> str:
    """A queue document, 2-space indented like Go's MarshalIndent, with a final newline.

    The legacy homebrew queue was written without HTML escaping (its tier labels hold a
    raw ``>``); pass ``escape_html=False`` for such files (see :func:`escapes_html`).
    """
    try:
        return _dumps_queue_fast(obj, escape_html)
    except orjson.JSONEncodeError:
        return dumps_queue_stdlib(obj, escape_html)


def _dumps_queue_fast(obj: Any, escape_html: bool) -> str:
    """:func:`dumps_queue` by orjson (raises ``orjson.JSONEncodeError`` on what it refuses).
    orjson's 2-space indent is json.dumps(indent=2)'s layout (tests/test_codec.py); queue
    documents are validated first and hold no floats (their models have none)."""
    data = orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    return _go_escape_bytes(data, escape_html).decode("utf-8") + "\n"


def dumps_queue_stdlib(obj: Any, escape_html: bool = True) -> str:
    """The reference for :func:`dumps_queue` (the standard library's encoder)."""
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


def loads_trusted(data: bytes | str) -> Any:
    """Decode JSON this run wrote itself, or that only feeds a read-only view (the flat
    rows of analysis and of the steps' read-only pass): orjson, three times faster than
    the strict decoder. What orjson refuses, and a line whose ``exit_code`` it read as a
    float (an integer beyond 64 bits; no other field the models type holds one), go
    through :func:`loads`. Everything the tool validates or rewrites from outside is
    decoded by :func:`loads`."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return loads(data)
    if isinstance(obj, dict) and type(obj.get("exit_code")) is float:
        return loads(data)  # orjson reads an integer beyond 64 bits as a float
    return obj


def loads(data: bytes | str) -> Any:
    """Decode one JSON document strictly. Raises :class:`DecodeError` with a readable reason."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise DecodeError("starts with a UTF-8 byte-order mark")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"invalid UTF-8 at byte {exc.start}", data.count(b"\n", 0, exc.start) + 1
            ) from None
    else:
        text = data
    if "\x00" in text:
        raise DecodeError("contains a NUL byte")
    try:
        return _DECODER.decode(text)
    except DecodeError:
        raise
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
