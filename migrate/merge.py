"""``migrate merge-driver``: a git merge driver for the queues, entry by entry.

Two writers save the queue: tsuku's ``update-queue-status`` workflow after every push,
and ``migrate up``. Saved on two branches, the queue conflicts on its header at least
(``updated_at`` moves at every save). A queue is derived data, and each of its values
has one owner (design.md, "One pipeline, one owner per value"), so the conflict is
resolved from the three versions (base, ours, theirs) and those owners, never by taking
one side whole:

* an entry's field changed on one side only takes that side's value;
* ``status`` changed on both sides: a decision made elsewhere (``success``, ``excluded``,
  ``requires_manual``, ``skipped``) wins; else the value migrate set on one side (its
  ledger runs on that side say so) gives way to the other writer's; ``migrate up``
  derives status again after the merge, so nothing of migrate's is lost either;
* the other fields (``failure_count``, ``next_retry_at``, ...) are tsuku's: changed on
  both sides, the later save's value (by ``updated_at``) is kept;
* an entry added on one side is added; removed on one side and left alone on the other,
  it goes; removed on one side and changed on the other, it stays (nothing lost);
* the order is the side's that reordered it (tsuku's queue-maintain sorts at every run;
  migrate never moves an entry), the later save's when both did; ``updated_at`` the later.

Set up once per clone with ``migrate merge-driver --install`` (``.gitattributes`` and
``git config``); ``migrate merge-driver --resolve PATH`` resolves a queue already left
with conflict markers (from git's index stages).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate import codec
from migrate.errors import MigrateError, UsageError
from migrate.queues import entry_id
from migrate.reader import queue_kind
from migrate.status_rules import FIXED_STATUSES

DRIVER = "migrate-queue"
_MISSING = object()  # (a key a side does not have: not the same as null)
ATTRIBUTES = ("data/queues/*.json", "data/priority-queue.json")


@dataclass
class Merged:
    data: bytes
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def _doc(data: bytes, which: str) -> dict[str, Any]:
    try:
        doc = codec.loads(data)
        queue_kind(doc)
    except ValueError as exc:
        raise UsageError(f"{which} version of the queue does not read: {exc}") from None
    return doc


def _key(doc: dict[str, Any]) -> str:
    return "packages" if "packages" in doc else "entries"


def _by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry_id(e): e for e in entries}


def merge(
    base: bytes,
    ours: bytes,
    theirs: bytes,
    migrate_set: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set()),
) -> Merged:
    """The three versions merged (see the module). ``migrate_set``: per side (ours,
    theirs), the (package id, status) pairs migrate's runs on that side set."""
    o, a, b = _doc(base, "the base"), _doc(ours, "our"), _doc(theirs, "their")
    key = _key(a)
    eo, ea, eb = (_by_id(d.get(key, [])) for d in (o, a, b))
    later_is_theirs = str(b.get("updated_at", "")) > str(a.get("updated_at", ""))
    out = Merged(b"")
    merged: dict[str, dict[str, Any]] = {}
    for pid in [
        *ea,
        *(p for p in eb if p not in ea),
        *(p for p in eo if p not in ea and p not in eb),
    ]:
        x, y, z = eo.get(pid), ea.get(pid), eb.get(pid)
        entry = _entry(pid, x, y, z, later_is_theirs, migrate_set, out)
        if entry is not None:
            merged[pid] = entry
    order = _order(o, a, b, key, later_is_theirs)
    entries = [merged[p] for p in order if p in merged]
    entries += [e for p, e in merged.items() if p not in set(order)]
    doc = _fields(o, a, b, later_is_theirs, skip=(key, "updated_at"))
    doc["updated_at"] = max(str(a.get("updated_at", "")), str(b.get("updated_at", "")))
    doc[key] = entries
    like = theirs if later_is_theirs else ours
    out.data = codec.dumps_queue(doc, codec.escapes_html(like.decode("utf-8"))).encode()
    return out


def _pick(o: Any, a: Any, b: Any, later_is_theirs: bool) -> Any:
    if a == b or b == o:
        return a
    if a == o:
        return b
    return b if later_is_theirs else a


def _fields(o, a, b, later_is_theirs: bool, skip=()) -> dict[str, Any]:
    """Every key of two sides merged against the base (a key one side dropped, and the
    other left as it was, goes), in the order of the later save."""
    first, second = (b, a) if later_is_theirs else (a, b)
    out = {}
    for k in [*first, *(k for k in second if k not in first)]:
        if k in skip:
            out[k] = first.get(k, second.get(k))
            continue
        v = _pick(o.get(k, _MISSING), a.get(k, _MISSING), b.get(k, _MISSING), later_is_theirs)
        if v is not _MISSING:
            out[k] = v
    return out


def _entry(pid, x, y, z, later_is_theirs, migrate_set, out: Merged) -> dict[str, Any] | None:
    if y is None and z is None:
        return None  # (removed on both sides)
    if y is None or z is None:
        kept, other = (z, "ours") if y is None else (y, "theirs")
        if x is None:
            return kept  # added on one side
        if kept == x:
            out.counts["entries removed on one side"] += 1
            return None
        out.counts["entries removed on one side, changed on the other: kept"] += 1
        out.notes.append(f"{pid}: removed {other}, changed on the other side: kept")
        return kept
    base = x or {}
    entry = _fields(base, y, z, later_is_theirs, skip=("status",))
    sa, sb, so = y.get("status"), z.get("status"), base.get("status")
    if sa == sb or sb == so:
        entry["status"] = sa
    elif sa == so:
        entry["status"] = sb
    else:
        entry["status"] = _status_conflict(pid, sa, sb, later_is_theirs, migrate_set, out)
    return entry


def _status_conflict(pid, sa, sb, later_is_theirs, migrate_set, out: Merged) -> str:
    """Both sides changed the status, to different values (see the module)."""
    mine_a, mine_b = (pid, sa) in migrate_set[0], (pid, sb) in migrate_set[1]
    if sa in FIXED_STATUSES and sb not in FIXED_STATUSES:
        chosen, why = sa, "decided elsewhere"
    elif sb in FIXED_STATUSES and sa not in FIXED_STATUSES:
        chosen, why = sb, "decided elsewhere"
    elif mine_a and not mine_b:
        chosen, why = sb, "theirs: ours was migrate's, derived again by `migrate up`"
    elif mine_b and not mine_a:
        chosen, why = sa, "ours: theirs was migrate's, derived again by `migrate up`"
    else:
        chosen, why = (sb, "the later save's") if later_is_theirs else (sa, "the later save's")
    out.counts["statuses both sides changed"] += 1
    out.notes.append(f"{pid}: status {sa} (ours) / {sb} (theirs): kept {chosen} ({why})")
    return chosen


def _order(o, a, b, key, later_is_theirs) -> list[str]:
    ids = [[entry_id(e) for e in d.get(key, [])] for d in (o, a, b)]
    base = [p for p in ids[0]]
    moved_a = [p for p in ids[1] if p in set(base)] != [p for p in base if p in set(ids[1])]
    moved_b = [p for p in ids[2] if p in set(base)] != [p for p in base if p in set(ids[2])]
    if moved_b and (not moved_a or later_is_theirs):
        return ids[2] + [p for p in ids[1] if p not in set(ids[2])]
    return ids[1] + [p for p in ids[2] if p not in set(ids[1])]


# ---------------------------------------------------------------------------- git side


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True)


def migrate_sets(path: str, cwd: Path | None = None) -> tuple[set, set]:
    """Per side of the merge in progress (ours: HEAD; theirs: MERGE_HEAD, REBASE_HEAD or
    CHERRY_PICK_HEAD), the (package id, status) pairs migrate's runs on that side set in
    ``path`` since the two sides parted (empty when git cannot say)."""
    from migrate.layout import RUNS_DIR

    theirs = next(
        (
            ref
            for ref in ("MERGE_HEAD", "REBASE_HEAD", "CHERRY_PICK_HEAD")
            if _git("rev-parse", "-q", "--verify", ref, cwd=cwd).returncode == 0
        ),
        None,
    )
    if theirs is None:
        return set(), set()
    fork = _git("merge-base", "HEAD", theirs, cwd=cwd).stdout.decode().strip()
    out = []
    for side in ("HEAD", theirs):
        pairs: set[tuple[str, str]] = set()
        names = (
            _git("diff", "--name-only", "--diff-filter=A", fork, side, "--", RUNS_DIR, cwd=cwd)
            .stdout.decode()
            .split()
        )
        for name in names:
            text = _git("show", f"{side}:{name}", cwd=cwd).stdout
            for line in text.splitlines()[1:]:
                try:
                    rec = codec.loads_trusted(line)
                except ValueError:
                    continue
                if rec.get("path") != path:
                    continue
                for changes in (rec.get("patch") or {}).values():
                    for ch in changes.get("entries", []) if isinstance(changes, dict) else []:
                        if "status" in ch:
                            pairs.add((ch["id"], ch["status"][1]))
        out.append(pairs)
    return out[0], out[1]


def drive(base: str, ours: str, theirs: str, path: str) -> int:
    """git's call (``%O %A %B %P``): the merge written over ``ours``; 0 when resolved."""
    try:
        m = merge(
            Path(base).read_bytes(),
            Path(ours).read_bytes(),
            Path(theirs).read_bytes(),
            migrate_sets(path),
        )
    except (OSError, MigrateError) as exc:
        print(
            f"migrate merge-driver: {path}: not merged ({exc}); resolve it by hand", file=sys.stderr
        )
        return 1
    Path(ours).write_bytes(m.data)
    _report(path, m)
    return 0


def resolve(path: str) -> int:
    """A queue left with conflict markers: merged again from git's index stages."""
    stages = []
    for n in (1, 2, 3):
        got = _git("show", f":{n}:{path}")
        if got.returncode:
            raise UsageError(
                f"{path}: git has no conflict on it to resolve (no stage {n} in the index)",
                hint="run it while a merge, rebase or cherry-pick stops on that file",
            )
        stages.append(got.stdout)
    m = merge(*stages, migrate_sets(path))
    Path(path).write_bytes(m.data)
    _report(path, m)
    print(f"resolved {path}: `git add {path}`, then `migrate up` derives status again")
    return 0


def _report(path: str, m: Merged) -> None:
    what = ", ".join(f"{k} {n}" for k, n in sorted(m.counts.items())) or "no entry both changed"
    print(f"migrate merge-driver: {path}: merged entry by entry ({what})", file=sys.stderr)
    for note in m.notes[:20]:
        print(f"  {note}", file=sys.stderr)
    if len(m.notes) > 20:
        print(f"  ... and {len(m.notes) - 20} more", file=sys.stderr)


def install(root: Path) -> list[str]:
    """``.gitattributes`` lines and ``git config`` for the driver, in the git repo around
    ``root``. Returns what it did."""
    top = _git("rev-parse", "--show-toplevel", cwd=root)
    if top.returncode:
        raise UsageError(f"{root}: not inside a git repository")
    top_dir = Path(top.stdout.decode().strip())
    prefix = root.resolve().relative_to(top_dir.resolve()).as_posix()
    done = []
    attrs = top_dir / ".gitattributes"
    text = attrs.read_text(encoding="utf-8") if attrs.exists() else ""
    lines = [
        f"{'' if prefix == '.' else prefix + '/'}{pattern} merge={DRIVER}" for pattern in ATTRIBUTES
    ]
    missing = [line for line in lines if line not in text.splitlines()]
    if missing:
        sep = "" if not text or text.endswith("\n") else "\n"
        attrs.write_text(text + sep + "".join(line + "\n" for line in missing), encoding="utf-8")
        done.append(f"{attrs.name}: added {len(missing)} line(s) (commit it)")
    for key, value in (
        (f"merge.{DRIVER}.name", "migrate: queues merged entry by entry"),
        (f"merge.{DRIVER}.driver", "migrate merge-driver %O %A %B %P"),
    ):
        _git("config", key, value, cwd=top_dir)
        done.append(f"git config {key}")
    return done
