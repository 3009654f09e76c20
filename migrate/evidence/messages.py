"""Blocker names in orchestrator output (a record's ``message``, or a log section).

The only proof of a missing dependency is the registry error
``recipe NAME not found in registry``, in any of its real forms:

* alone, or after ``Error: registry: `` (Jan-Feb install path);
* after a wrapper, ``Error: failed to install runtime dependency 'ada-url': registry: ...``;
* as a ``; ``-separated list after ``[missing_dep] missing dependencies: `` (since March).

A wrapper alone is no proof: three real records say ``failed to install runtime dependency
'gcc-libs'`` because the dependency's download failed while its recipe exists. Lines that
name dependencies but are not blockers (``Resolving runtime dependency 'X'...``,
``Installing dependency: X@v``, ``Checking runtime dependencies for X...`` and the like)
never match, since only the registry error does. ``package 'X' not found in homebrew`` is a
*true* not-found of the source package, not a blocker.

Truncation: messages are cut at 500 bytes with ``...``; a name is taken only when the
whole ``recipe NAME not found in registry`` phrase survived, so a cut name is never taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from migrate.models import valid_blocker_name as valid_name

REGISTRY_ERROR = re.compile(r"recipe (?P<name>[^\s;'\"]+) not found in registry")
TRUE_NOT_FOUND = re.compile(r"package '(?P<name>[^']+)' not found in (?P<eco>[\w.\-]+)")


@dataclass(frozen=True)
class MessageMatch:
    names: list[str]
    lines: list[str]  # the matched lines, for provenance
    rejected: list[str]  # names refused by the hygiene rules


def blocker_names(message: str, package_name: str | None = None) -> MessageMatch:
    """Names of missing recipes the message proves, first-seen order, no duplicates.

    ``package_name`` (the failing package itself) is never its own blocker.
    """
    names: list[str] = []
    lines: list[str] = []
    rejected: list[str] = []
    if "not found in registry" not in message:
        return MessageMatch([], [], [])
    line_start = -1
    for m in REGISTRY_ERROR.finditer(message):  # a name never spans lines (no whitespace)
        name = m.group("name")
        if not valid_name(name):
            rejected.append(name)
            continue
        if name == package_name:
            continue
        if name not in names:
            names.append(name)
        start = message.rfind("\n", 0, m.start()) + 1
        if start != line_start:  # each matched line once, in order
            line_start = start
            end = message.find("\n", m.end())
            lines.append(message[start : end if end >= 0 else len(message)].strip())
    return MessageMatch(names, lines, rejected)


def true_not_found(message: str) -> str | None:
    """The source package named by ``package 'X' not found in <eco>``, if the message says so."""
    m = TRUE_NOT_FOUND.search(message)
    return m.group("name") if m else None
