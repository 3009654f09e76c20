"""The pure core: every rule about one file's life, bytes in and bytes out (no I/O).

What a file is, and what a run does to it, is decided here and nowhere else:

* **which steps** a failure file gets (:func:`line_steps`): its content says its version;
  a line at v1 gets every line step up to the target (a file another writer added, or
  rewrote at v1, whatever the repo's version); a file at v2 gets the line steps the repo
  itself moves through;
* **forward** (:func:`forward_lines`, :func:`forward_derived`): the steps applied in
  memory, each line parsed once for all of them, the inverse of every change proved
  before anything is written, the ledger's record of the file made;
* **backward** (:func:`backward`): each file gets one rule - its exact bytes back, its
  values reverted entry by entry (a queue another writer saved since), left as its
  writer wrote it (a file migrate did not write, or one migrate 0.3 saw replaced since),
  or left deleted.

Tests drive it with stand-in steps (tests/test_lifecycle.py).
"""

from __future__ import annotations

import base64
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from migrate import codec
from migrate.layout import FailureFile
from migrate.reader import Problem, join_lines, split_lines
from migrate.steps.base import DerivedStep, LineAt, LineProblem, LineStep, Step, Tally
from migrate.store.ledger import FileState, checksum

#: the rules a file is reverted by
EXACT = "exact bytes back"
ENTRIES = "reverted entry by entry"
THEIRS = "left as its writer wrote it"
GONE = "deleted by another writer: left deleted"


def line_steps(
    version: int | None, repo_at: str | None, target: str | None, registry
) -> list[LineStep]:
    """The line steps a failure file whose lowest line version is ``version`` gets in a
    run taking the repo from ``repo_at`` to ``target``: a v1 line lacks every line step
    up to the target; a file already at v2 gets only the steps the repo moves through; a
    file with no line (None) gets none."""
    if version is None:
        return []
    upto = [s for s in registry.upto(target) if isinstance(s, LineStep)]
    if version < 2:
        return upto
    moving = {s.id for s in registry.between(repo_at, target)}
    return [s for s in upto if s.id in moving]


@dataclass(slots=True)
class Outcome:
    """What a run does to one file (small: it crosses from a worker to the main process)."""

    rel: str
    data: bytes = b""  # its bytes after the run (the new version, when changed)
    changed: bool = False
    steps: list[str] = field(default_factory=list)  # the steps that changed it
    patches: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: per step: lines (or files) whose original the ledger keeps, by the step's reason
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bug: str | None = None  # a step raised, or lost what it did not declare: the traceback


class _Patch:
    """A line step's patch: the lines it changed (``changed``; absent: every non-blank
    line it did not keep), the originals of lines its ``line_down`` does not give back
    exactly (``lines``, ``lines64`` when not UTF-8), and whether the file had no final
    newline. Lines never move, so a line number is the same before and after."""

    def __init__(self) -> None:
        self.lines: dict[str, str] = {}
        self.lines64: dict[str, str] = {}
        self.changed: list[int] = []
        self.no_final_newline = False

    def keep(self, lineno: int, raw: bytes) -> None:
        try:
            self.lines[str(lineno)] = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.lines64[str(lineno)] = base64.b64encode(raw).decode("ascii")

    def to_json(self, nonblank: list[int]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if self.lines:
            out["lines"] = self.lines
        if self.lines64:
            out["lines64"] = self.lines64
        if self.no_final_newline:
            out["no_final_newline"] = True
        kept = {int(k) for k in (*self.lines, *self.lines64)}
        if self.changed != [n for n in nonblank if n not in kept]:
            out["changed"] = self.changed
        return out or None


def forward_lines(
    rel: str,
    data: bytes,
    steps: list[LineStep],
    prepared: dict[str, Any],
    quarantine: bool = False,
) -> Outcome:
    """A failure file through ``steps``: each line decoded once, handed from step to step,
    written once; ``line_down`` proved on every change (see :class:`LineStep`)."""
    out = Outcome(rel, data)
    ff = FailureFile.from_rel(rel)
    tallies = {s.id: Tally() for s in steps}
    patches = {s.id: _Patch() for s in steps}
    kept: dict[str, Counter[str]] = {s.id: Counter() for s in steps}
    lines: list[bytes] = []
    nonblank: list[int] = []
    try:
        for lineno, raw in split_lines(data):
            if not raw.strip():
                lines.append(raw)
                continue
            nonblank.append(lineno)
            at = LineAt(ff, lineno)
            if not any(s.may_change(raw, at, prepared[s.id]) for s in steps):
                lines.append(raw)  # (not decoded: no step may change it)
                continue
            new_raw, obj = _line_through(
                raw, at, steps, prepared, tallies, patches, kept, quarantine
            )
            if new_raw is None:  # refused: problems, or quarantined (blanked)
                lines.append(b"")
                out.problems.extend(obj or [])
                continue
            lines.append(new_raw)
    except _Bug as bug:
        out.bug = bug.text
        return out
    if out.problems:
        return out
    return _finish(
        out, data, join_lines(lines) if lines else b"", steps, tallies, patches, kept, nonblank
    )


def _finish(out: Outcome, data: bytes, new: bytes, steps, tallies, patches, kept, nonblank):
    """``out`` with what each step counted, and (when a line changed) the new bytes, the
    steps that changed them and their patches."""
    for s in steps:
        t = tallies[s.id]
        out.counts[s.id] = dict(t.counts)
        if t.notes:
            out.notes[s.id] = t.notes
        if kept[s.id]:
            out.kept[s.id] = dict(kept[s.id])
    changed = [s for s in steps if patches[s.id].changed or patches[s.id].lines]
    if new == data or not changed:  # (no line changed: not even a final newline added)
        return out
    if data and not data.endswith(b"\n"):
        patches[changed[0].id].no_final_newline = True
    out.data, out.changed = new, True
    out.steps = [s.id for s in changed]
    for s in changed:
        p = patches[s.id].to_json(nonblank)
        if p is not None:
            out.patches[s.id] = p
    return out


class _Bug(Exception):
    def __init__(self, text: str):
        self.text = text


def _line_through(raw, at, steps, prepared, tallies, patches, kept, quarantine):
    """(new bytes, decoded line) of one line through every step; (None, problems) for a
    refused line, (None, None) for one quarantined."""
    try:
        obj = codec.loads(raw)
        if not isinstance(obj, dict):
            raise LineProblem(f"expected a JSON object, got {type(obj).__name__}")
    except (codec.DecodeError, LineProblem) as exc:
        return _refused(raw, at, steps[0], LineProblem(str(exc)), patches, tallies, quarantine)
    given = raw
    for s in steps:
        try:
            new = s.line_up(obj, at, prepared[s.id], tallies[s.id])
        except LineProblem as exc:
            return _refused(given, at, s, exc, patches, tallies, quarantine)
        except Exception:
            raise _Bug(f"step {s.id} on {at.rel}:{at.lineno}:\n{traceback.format_exc()}") from None
        if new is None:
            continue
        new_raw = codec.dumps_bytes(new)
        p = patches[s.id]
        p.changed.append(at.lineno)
        try:
            back = codec.dumps_bytes(s.line_down(new))
        except Exception:
            raise _Bug(
                f"step {s.id} (down) on {at.rel}:{at.lineno}:\n{traceback.format_exc()}"
            ) from None
        if back != given:
            reason = s.why_kept(given, obj)
            if reason is None:
                raise _Bug(
                    f"step {s.id} on {at.rel}:{at.lineno}: its line_down does not give back"
                    f" the line it was given, and the step does not say why\n"
                    f"  given: {given[:200]!r}\n  back:  {back[:200]!r}"
                )
            p.keep(at.lineno, given)
            kept[s.id][reason] += 1
        obj, given = new, new_raw
    return given, obj


def _refused(raw, at, step, exc, patches, tallies, quarantine):
    if step.quarantines and quarantine:
        patches[step.id].keep(at.lineno, raw)  # blanked here; its down puts it back
        patches[step.id].changed.append(at.lineno)
        tallies[step.id].counts["lines quarantined"] += 1
        tallies[step.id].notes.extend(f"quarantined {p}" for p in exc.at(at.rel, at.lineno))
        return None, None
    return None, exc.at(at.rel, at.lineno)


def forward_derived(rel: str, data: bytes, step: DerivedStep, prepared: Any) -> Outcome:
    """A derived file through its step, on its bytes as they are; the revert proved."""
    out = Outcome(rel, data)
    try:
        d = step.derive(rel, data, prepared)
    except Exception:
        out.bug = f"step {step.id} on {rel}:\n{traceback.format_exc()}"
        return out
    out.counts[step.id] = dict(d.tally.counts)
    if d.tally.notes:
        out.notes[step.id] = d.tally.notes
    if d.problems:
        out.problems = d.problems
        return out
    if d.changes is None or d.data == data:
        return out
    try:
        back, _ = step.revert(rel, d.data, d.changes)
    except Exception:
        out.bug = f"step {step.id} (revert) on {rel}:\n{traceback.format_exc()}"
        return out
    changes = d.changes
    if back != data:  # (not in Go's spelling: the ledger keeps the bytes it was given)
        changes = {**changes, "restore": _text(data)}
        out.kept[step.id] = {"not in the spelling the step writes: kept whole": 1}
    out.data, out.changed, out.steps = d.data, True, [step.id]
    out.patches[step.id] = changes
    return out


def _text(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _untext(obj: dict[str, str]) -> bytes:
    return obj["text"].encode("utf-8") if "text" in obj else base64.b64decode(obj["base64"])


def down_lines(data: bytes, patch: Any, step: LineStep) -> bytes:
    """A file back through a line step: each line it changed through ``line_down`` (a line
    it leaves as it is keeps its bytes; blank lines stay), but the lines the patch keeps."""
    patch = patch or {}
    kept = patch.get("lines", {})
    kept64 = patch.get("lines64", {})
    changed = set(patch["changed"]) if "changed" in patch else None
    out = []
    for lineno, raw in split_lines(data):
        key = str(lineno)
        if key in kept:
            out.append(kept[key].encode("utf-8"))
        elif key in kept64:
            out.append(base64.b64decode(kept64[key]))
        elif not raw.strip() or (changed is not None and lineno not in changed):
            out.append(raw)
        else:
            obj = codec.loads(raw)
            new = step.line_down(obj)
            out.append(raw if new == obj else codec.dumps_bytes(new))
    body = join_lines(out) if out else b""
    return body[:-1] if patch.get("no_final_newline") else body


@dataclass
class Revert:
    """What a down does to one file."""

    rel: str
    rule: str = ""  # one of the rules above ("": no step to revert had changed it)
    data: bytes = b""
    changed: bool = False
    reverted: list[str] = field(default_factory=list)  # steps that changed its bytes
    counts: Counter[str] = field(default_factory=Counter)  # entry by entry: what went back
    note: str = ""
    refused: str = ""  # why this file cannot be reverted


def _take_back(rel: str, cur: bytes, a, step: Step, state: FileState):
    """``cur`` with one applied step taken back: (its bytes, counts of what went back)."""
    if step.derived:
        if "unrecorded" in (a.patch or {}) and (
            state.after is None or checksum(cur) != state.after
        ):
            raise ValueError(
                "the run that wrote it was made by migrate 0.2 or older, which did not"
                " record the values it set, and another writer saved it since"
            )
        return step.revert(rel, cur, a.patch)
    if a.patch and "restore" in a.patch:
        return _untext(a.patch["restore"]), Counter()
    return down_lines(cur, a.patch, step), Counter()


def backward(
    rel: str,
    data: bytes | None,
    state: FileState,
    steps: list[Step],
    force: bool = False,
) -> Revert:
    """``rel`` (``data``: its bytes, None when it is gone) with ``steps`` taken back, from
    what the ledger says of it (``state``)."""
    out = Revert(rel, data=data or b"")
    ids = {s.id for s in steps}
    by_id = {s.id: s for s in steps}
    mine = [a for a in state.applied if a.step in ids]
    if not mine:
        return out
    if data is None:
        out.rule = GONE
        return out
    replaced = state.after is not None and checksum(data) != state.after
    if replaced and not any(by_id[a.step].derived for a in mine):
        out.rule = THEIRS  # (migrate 0.3 recorded the bytes it left: these are not)
        return out
    cur = data
    for a in reversed(mine):
        try:
            new, counts = _take_back(rel, cur, a, by_id[a.step], state)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            if force:
                out.note = f"{rel}: left as its writer wrote it (--force): {exc}"
                break
            out.refused = (
                f"{rel}: step {a.step} cannot be reverted on it without overwriting"
                f" another writer's values ({exc})"
            )
            return out
        out.counts.update(counts)
        if new != cur:
            out.reverted.append(a.step)
        cur = new
    kept_theirs = any(k.endswith("as their writer set it") for k in out.counts)
    out.changed, out.data = cur != data, cur
    if not out.changed and not out.counts:
        out.rule = THEIRS  # (saved since by a writer that did not read migrate's output)
    else:
        out.rule = ENTRIES if kept_theirs else EXACT
    return out
