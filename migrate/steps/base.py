"""What a migration step is: an id, a description, and a pure ``up``/``down`` per file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from migrate.reader import Problem
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
    #: What the step knows about its output bytes (``data``) that the next step of the same
    #: run would otherwise read them again to learn; the engine hands it on with the
    #: checksum of those bytes, and the next step uses it only for a file that still has
    #: them (see ``Step.takes_carry``).
    carry: Any = None


class Step:
    #: record files ``up`` leaves unchanged in the ledger (before == after), for a step whose
    #: ``down_unrecorded`` converts files it has no record of
    records_unchanged: bool = False
    #: ``up`` takes a fourth argument: the previous step's ``carry`` for this file, passed
    #: only when the bytes the step is given are the very bytes it describes (else None)
    takes_carry: bool = False
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
        """Whole-repo context computed once before ``up`` (read-only).

        ``options["_written"]`` maps each file an applied step wrote to the checksum it
        left (see ``engine.latest_written``): a file that still has it holds only this
        tool's canonical lines, which a step may read by byte offsets.
        ``options["_carry"]`` maps each file to (checksum, carry) from the previous step of
        this run (``UpResult.carry``): valid for a file whose bytes have that checksum.
        ``options["_then"]``: the ids of the steps this run applies after this one (a
        carry is worth building only for a step that will run).
        """
        return None

    def up(self, rel: str, data: bytes, ctx: Any) -> UpResult:
        raise NotImplementedError

    def keep_carry(self, ctx: Any, kept: dict[str, Any], rel: str, carry: Any) -> None:
        """Keep one file's (checksum, carry) for the next step; called in file order, as
        the files' outcomes arrive (a step may drop what another file's carry supersedes,
        so that memory follows what the next step needs, not the number of records)."""
        kept[rel] = carry

    def down(self, rel: str, data: bytes, patch: Any) -> bytes:
        raise NotImplementedError

    def down_unrecorded(self, rel: str, data: bytes) -> bytes | None:
        """``down`` for a file the step never wrote (e.g. added by ``migrate ingest``
        afterwards); None leaves it as it is."""
        return None

    def summary(self, ctx: Any, totals: Counter[str]) -> list[str]:
        """Extra lines for the run summary (e.g. evidence per source)."""
        return []
