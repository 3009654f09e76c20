"""A failure message reduced to its signature: what the failure *is*, not which package,
version or run it hit.

The first meaningful line is kept (tsuku's telemetry notice, its "Skipping recipe
review" warning and progress lines such as "Inspecting bottle contents... failed" are not
meaningful; a line that says error, failed, not found, cannot or unable is preferred to
the lines before it), then the package's own name, versions,
hashes, temporary paths, ``owner/repo`` pairs and numbers are taken out. Two failures
of one kind on two packages, or on one package in two runs, get one signature.
"""

from __future__ import annotations

import functools
import hashlib
import re

#: lines that carry no failure: tsuku's telemetry notice, its review warning, progress
_NOISE = re.compile(
    r"^(tsuku collects anonymous usage|no personal information is collected"
    r"|to opt out:|or export tsuku_no_telemetry|total steps:|warning: skipping recipe review"
    r"|suggestion:|to create a recipe"
    r"|installing |generating plan |executing plan|downloading |fetching |creating recipe for"
    r"|work directory:)",
    re.I,
)
#: a progress line: "Inspecting bottle contents... failed" (the reason follows it)
_PROGRESS = re.compile(r"^[\w ]+\.\.\.\s*(done|failed|ok)\b", re.I)
_ERRORISH = re.compile(r"error|failed|failure|not found|cannot|can't|unable|panic|denied", re.I)
_TMP = re.compile(r"(?:/tmp|/var/folders|/private/var|/var/tmp)/\S*")
_VERSION = re.compile(r"\bv?\d+(?:\.\d+)+(?:[-+~][\w.]+)?")
_HASH = re.compile(r"\b(?:0x[0-9a-f]+|[0-9a-f]{7,64})\b", re.I)
_REPO = re.compile(r"\b[\w.-]+/[\w.-]+(?:/[\w.-]+)?\b")
_NUMBER = re.compile(r"\b\d+\b")
_SPACE = re.compile(r"\s+")
#: a signature's length in characters (the messages themselves are cut at 500 bytes)
WIDTH = 160
NO_MESSAGE = "(no message)"


def first_line(message: str | None) -> str:
    """The line of ``message`` that says what failed (see the module's docstring)."""
    lines = [x.strip() for x in (message or "").splitlines()]
    lines = [x for x in lines if x and x != "..." and not _NOISE.match(x)]
    lines = [x for x in lines if not _PROGRESS.match(x)] or lines
    for line in lines:
        if _ERRORISH.search(line):
            return line
    return lines[0] if lines else ""


def signature(message: str | None, names: tuple[str, ...] = ()) -> str:
    """``message`` as its signature; ``names``: the package's own names (its id, bare
    name, recipe), taken out as ``<pkg>``."""
    line = first_line(message)
    if not line:
        return NO_MESSAGE
    if line.endswith("..."):  # (cut at 500 bytes by the writer)
        line = line[:-3].rstrip()
    own = _own_names(tuple(sorted({n for n in names if n}, key=len, reverse=True)))
    if own is not None:
        line = own.sub("<pkg>", line)
    line = _TMP.sub("<tmp>", line)
    line = _VERSION.sub("<v>", line)
    line = _HASH.sub("<hash>", line)
    line = _REPO.sub(lambda m: m.group(0) if "<" in m.group(0) else "<owner/repo>", line)
    line = _NUMBER.sub("<n>", line)
    line = _SPACE.sub(" ", line).strip()
    return line[:WIDTH]


@functools.lru_cache(maxsize=8192)
def _own_names(names: tuple[str, ...]) -> re.Pattern | None:
    """A package's own names as one pattern, longest first, whole names only (``gcc`` is
    not taken out of ``gcc-libs``); compiled once per package."""
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![\w@.+/-])(?:{alternatives})(?![\w@+/-])")


def signature_id(text: str) -> str:
    """A short stable key for a signature (JSON, CSV, the HTML page)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
