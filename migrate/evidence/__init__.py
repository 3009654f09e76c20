"""Evidence readers: each returns blocker names *with provenance*, never a guess.

Sources, in the order their names are merged (first seen wins the position):
  1. ``record``             the record's own ``blocked_by`` (kept by step 0001)
  2. ``message``            orchestrator output kept in the record's ``message``
  3. ``install_json``       ``tsuku install --json`` output (``missing_recipes``)
  4. ``validation_results`` CI ``validation-results-<platform>.json`` artifacts
  5. ``log``                orchestrator / CI run logs (plain text)
  6. ``sibling_record``     another record of the same package (step 0002 itself)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE_ORDER = ("record", "message", "install_json", "validation_results", "log", "sibling_record")


@dataclass
class Finding:
    """Blocker names for one recipe, found in one place of one evidence file.

    ``names == []`` with an exit code other than 8 is an explicit statement that nothing
    was missing (install JSON with ``missing_recipes: []``, a validation failure with
    ``blocked_by: []``): it never adds names but makes ``[]`` known. With exit code 8 it
    states nothing (a dependency failed, unnamed): blockers stay unknown.
    ``run`` and ``platform`` narrow which records the finding applies to.
    """

    source: str
    recipe: str
    names: list[str]
    detail: str
    file: str
    line: int | None = None
    platform: str | None = None
    run: str | None = None
    exit_code: int | None = None
    package_id: str | None = None

    def evidence(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "names": list(self.names),
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
        }


@dataclass
class EvidenceSet:
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # kind -> files recognized
