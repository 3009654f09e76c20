"""Blocker names in orchestrator or CI run logs (plain text).

A package's section starts at one of the marker lines real messages show:

* ``Creating recipe for NAME from ECO:ID...``   (package id known)
* ``Generating plan for NAME@VERSION``
* ``Checking runtime dependencies for NAME...`` (only where no section is open: inside one
  it names an eval-time dependency being checked, not the package)

and runs until a marker names another package (the three markers of one package in a row
are one section). Inside it, registry errors are read exactly as in a
record's message (:mod:`migrate.evidence.messages`): only ``recipe X not found in registry``
proves a blocker. Lines before the first marker belong to no package and are ignored.
"""

from __future__ import annotations

import re

from migrate.evidence import EvidenceSet, Finding
from migrate.evidence.messages import blocker_names

MARKERS = (
    re.compile(r"Creating recipe for (?P<name>\S+) from (?P<pid>[\w.\-]+:\S+?)\.\.\."),
    re.compile(r"Generating plan for (?P<name>[^@\s]+)@\S+"),
)
#: Starts a section only outside one: inside a package's section it often names an
#: eval-time dependency being checked (real records: npm:kew -> nodejs, rubygems:amp -> ruby).
CHECKING = re.compile(r"Checking runtime dependencies for (?P<name>\S+?)\.\.\.")


def scan_log(text: str, shown: str, run: str | None, out: EvidenceSet) -> bool:
    """Add one finding per package section that names blockers; True if it is a log."""
    sections: list[tuple[str, str | None, int, list[str]]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        markers = MARKERS if sections else (*MARKERS, CHECKING)
        for marker in markers:
            m = marker.search(line)
            if m:
                name = m.group("name")
                pid = m.groupdict().get("pid")
                if sections and sections[-1][0] == name:  # the same package goes on
                    last = sections[-1]
                    sections[-1] = (name, last[1] or pid, last[2], last[3])
                else:
                    sections.append((name, pid, lineno, []))
                break
        else:
            if sections:
                sections[-1][3].append(line)
    if not sections:
        return False
    for name, pid, start, body in sections:
        match = blocker_names("\n".join(body), name)
        if match.names:
            out.findings.append(
                Finding(
                    "log",
                    name,
                    match.names,
                    match.lines[0][:200],
                    shown,
                    start,
                    run=run,
                    package_id=pid,
                )
            )
    return True
