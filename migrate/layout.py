"""Where things are in a tsuku data repo, and what a failure file's name says (no I/O).

* ``data/failures/*.jsonl`` and the priority queues (``data/priority-queue.json``,
  ``data/queues/*.json`` but ``batch-results.json``) are the files the steps rewrite;
* ``data/.migrate/`` is migrate's own: ``runs/`` (the ledger, committed with the data) and,
  ignored by git through the ``.gitignore`` migrate keeps there, what a run leaves only
  while it runs (the lock, the staging archive, temporary files, a run not finished yet)
  and its cache (where no git repository is around it to keep it in).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

FAILURES_DIR = "data/failures"
QUEUES_DIR = "data/queues"
LEDGER_DIR = "data/.migrate"
RUNS_DIR = f"{LEDGER_DIR}/runs"
LOCK_FILE = f"{LEDGER_DIR}/lock"
TMP_DIR = f"{LEDGER_DIR}/tmp"
CACHE_DIR = f"{LEDGER_DIR}/cache"
ARCHIVE = f"{LEDGER_DIR}/staged.bin"
IGNORE_FILE = f"{LEDGER_DIR}/.gitignore"
#: what git must never commit of migrate's folder (written as IGNORE_FILE)
IGNORED = ("/lock*", "/staged.bin", "/tmp/", "/cache/", "/runs/*.pending")
#: Queue files, in the order they appeared upstream.
QUEUE_GLOBS = ("data/priority-queue.json", "data/queues/*.json")
BATCH_RESULTS = "batch-results.json"
#: The only files a ledger record may name: failure files and queues (no folders, no "..").
OWNED_PATH = re.compile(
    r"^data/(failures/[^/\\]+\.jsonl|queues/[^/\\]+\.json|priority-queue\.json)$"
)

_STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z"
_FAILURE_NAME = re.compile(rf"^(?P<prefix>.+?)(?:-(?P<stamp>{_STAMP}))?\.jsonl$")


def is_failure_file(rel: str) -> bool:
    return rel.startswith(FAILURES_DIR + "/")


@dataclass(frozen=True)
class FailureFile:
    """A ``data/failures/*.jsonl`` file and what its name says.

    ``ecosystem`` is known only from the name (``homebrew.jsonl``, ``<eco>-<ts>.jsonl``);
    ``batch-<ts>.jsonl`` files mix ecosystems, so theirs is ``None``.
    """

    rel: str
    ecosystem: str | None
    run: str | None
    family: str  # "mixed" (homebrew.jsonl), "timestamped", "batch", "other"

    @classmethod
    @functools.lru_cache(maxsize=256)  # (asked several times per file, one file after another)
    def from_rel(cls, rel: str) -> FailureFile:
        name = rel.rsplit("/", 1)[-1]
        m = _FAILURE_NAME.match(name)
        prefix, stamp = (m.group("prefix"), m.group("stamp")) if m else (name, None)
        if prefix == "batch" and stamp:
            return cls(rel, None, stamp, "batch")
        if stamp:
            return cls(rel, prefix, stamp, "timestamped")
        if name == "homebrew.jsonl":
            return cls(rel, "homebrew", None, "mixed")
        return cls(rel, None, None, "other")
