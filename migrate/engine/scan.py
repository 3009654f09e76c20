"""Where each file stands: the repo's bytes against what the ledger says the tool left.

The repo keeps living after a backfill: tsuku's orchestrator adds v1 failure files and
its jobs rewrite the queue. Each file the steps own is one of

* ``same``    — its bytes are those the tool left (the ledger's state holds);
* ``new``     — the ledger does not know it (another writer added it);
* ``changed`` — its bytes differ from those the tool left (another writer rewrote it);

and a file the ledger knows may be ``gone``. A new or changed file is taken from where
its content is (its own version), never from the ledger's history of the bytes it
replaced: ``up`` runs on it the steps its content lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from migrate import codec
from migrate.ledger import FileState, Ledger, Summary, checksum
from migrate.parallel import map_files
from migrate.progress import Phase, phase
from migrate.reader import split_lines
from migrate.repo import DataRepo
from migrate.steps import STEPS


@dataclass(slots=True, eq=False)  # (not frozen: 57,000 of them are built per run, twice
# as fast; compared and hashed by identity, as a frozen Plan holding them needs)
class Seen:
    """Where one file stands. What the plan needs of the ledger's state of a file whose
    bytes are the tool's (``same``) is kept here (the steps applied, ``at``, the inputs
    of derived steps); the whole state, patches included, is decoded again when the run
    asks for it (:attr:`state`), so a scan of 57,000 files does not hold 57,000 states."""

    rel: str
    family: str  # "failures" or "queues"
    digest: str
    kind: str  # "same", "new" or "changed"
    ids: tuple[str, ...] = ()  # same: the ids of the steps applied to it, in order
    at: str | None = None  # same: the last step its origin's content already had
    inputs: tuple[tuple[str, str | None], ...] = ()  # same: (step id, inputs) per step
    #: where the ledger's state of the file is decoded from, on demand (the ledger's
    #: states; after a merge, the other branch's entry)
    states: Mapping[str, FileState] | None = None

    @property
    def state(self) -> FileState | None:
        """The ledger's state of the file, when it still describes these bytes."""
        return self.states[self.rel] if self.kind == "same" and self.states else None

    @property
    def replaced(self) -> FileState | None:
        """A changed file: the ledger's state of the bytes it replaced (what the tool
        last left)."""
        return self.states[self.rel] if self.kind == "changed" and self.states else None


def _same(rel: str, family: str, digest: str, summary: Summary, states) -> Seen:
    # (the tuples of a summary are the same for thousands of files: kept once)
    ids, inputs = (
        _SHARED.setdefault(summary.ids, summary.ids),
        _SHARED.setdefault(summary.inputs, summary.inputs),
    )
    return Seen(rel, family, digest, "same", ids, summary.at, inputs, states)


_SHARED: dict[tuple, tuple] = {}


@dataclass
class Scan:
    files: dict[str, Seen] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)  # known to the ledger, no longer there

    @property
    def others(self) -> list[Seen]:
        """Files other writers added or rewrote since the tool last wrote them."""
        return [s for s in self.files.values() if s.kind != "same"]


def family_files(repo: DataRepo) -> dict[str, str]:
    """Every file a step rewrites -> its family."""
    out: dict[str, str] = {}
    for step in STEPS:
        for rel in step.files(repo):
            out.setdefault(rel, step.family)
    return out


def scan(
    repo: DataRepo,
    ledger: Ledger,
    jobs: int = 1,
    known: dict[str, str] | None = None,
    progress: Phase | None = None,
) -> Scan:
    """Every owned file read and checksummed once (``jobs`` processes), but those whose
    checksum the caller has just taken (``known``); with nothing in the ledger, every file
    is new and none is read."""
    families = family_files(repo)
    states = ledger.states()
    rels = list(families)
    known = known or {}
    out = Scan()
    if states:
        todo = [rel for rel in rels if rel not in known]
        shown = phase(progress, "where each file stands", len(todo))
        read = dict(zip(todo, map_files(_digest(repo), todo, jobs, shown), strict=True))
        digests = [known.get(rel) or read[rel] for rel in rels]
    else:
        digests = ["" for _ in rels]
    for rel, digest in zip(rels, digests, strict=True):
        summary = states.summary(rel)
        fam = families[rel]
        if summary is None:
            out.files[rel] = Seen(rel, fam, digest, "new")
        elif digest != summary.after and (left := ledger.state_left(rel, digest)) is not None:
            out.files[rel] = _same(rel, fam, digest, Summary.of(left), {rel: left})  # (merged)
        elif digest != summary.after:
            out.files[rel] = Seen(rel, fam, digest, "changed", states=states)
        else:
            out.files[rel] = _same(rel, fam, digest, summary, states)
    out.gone = sorted(rel for rel in states if rel not in families and not repo.exists(rel))
    return out


def _digest(repo: DataRepo):
    def one(rel: str) -> str:
        try:
            return checksum(repo.read_bytes(rel))
        except Exception:  # (unreadable: the step that reads it names the problem)
            return ""

    return one


def content_version(data: bytes) -> int:
    """The lowest schema_version among a failure file's lines; a line that does not say
    counts as 1 (the steps will name it)."""
    lowest = None
    for _, raw in split_lines(data):
        if not raw.strip():
            continue
        try:
            v = codec.loads(raw).get("schema_version")
        except (ValueError, AttributeError):
            v = None
        v = v if isinstance(v, int) and not isinstance(v, bool) else 1
        lowest = v if lowest is None else min(lowest, v)
    return lowest or 1
