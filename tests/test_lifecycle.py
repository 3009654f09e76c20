"""The pure core (migrate/engine/lifecycle.py) and the registry, with stand-in steps, in
memory, bytes in and bytes out."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from migrate import codec
from migrate.engine.lifecycle import (
    ENTRIES,
    EXACT,
    GONE,
    THEIRS,
    backward,
    down_lines,
    forward_derived,
    forward_lines,
    line_steps,
)
from migrate.steps import Registry, RegistryError
from migrate.steps.base import Derivation, DerivedStep, LineProblem, LineStep, Tally
from migrate.store.ledger import Applied, FileState, checksum

REL = "data/failures/homebrew-2026-02-07T03-03-36Z.jsonl"


class Tag(LineStep):
    """Adds ``tag`` after ``category`` (a new dict); its inverse takes it out."""

    def __init__(self, sid: str = "0001", key: str = "tag"):
        self.id, self.name, self.key = sid, f"tag-{key}", key
        self.seen: list[int] = []  # the id of every line object it was given

    def line_up(self, line, at, prepared, tally: Tally):
        self.seen.append(id(line))
        if self.key in line:
            return None
        tally.counts["tagged"] += 1
        return {**line, self.key: prepared}

    def line_down(self, line):
        return {k: v for k, v in line.items() if k != self.key}

    def why_kept(self, raw, line):
        return "another writer's spelling" if codec.dumps_bytes(line) != raw else None


class Lossy(Tag):
    """A step whose inverse forgets what it added: a bug the core must not paper over."""

    def line_down(self, line):
        return line


class Picky(Tag):
    quarantines = True

    def line_up(self, line, at, prepared, tally):
        if line.get("bad"):
            raise LineProblem("bad line", "bad")
        return super().line_up(line, at, prepared, tally)


def lines(*objs) -> bytes:
    return b"".join(codec.dumps_bytes(o) + b"\n" for o in objs)


def test_every_line_is_parsed_once_for_all_steps_and_comes_back_exactly(monkeypatch):
    a, b = Tag("0001", "a"), Tag("0002", "b")
    data = lines({"x": 1}, {"x": 2}) + b"\n" + lines({"x": 3, "a": 0})
    parsed = []
    real = codec.loads
    monkeypatch.setattr(codec, "loads", lambda raw: parsed.append(raw) or real(raw))
    out = forward_lines(REL, data, [a, b], {"0001": "A", "0002": "B"})
    monkeypatch.undo()
    assert len(parsed) == 3  # one decode a line, whatever the number of steps
    assert out.bug is None and not out.problems and out.changed
    assert [json.loads(x) for x in out.data.split(b"\n") if x] == [
        {"x": 1, "a": "A", "b": "B"},
        {"x": 2, "a": "A", "b": "B"},
        {"x": 3, "a": 0, "b": "B"},
    ]
    assert out.data.split(b"\n")[2] == b""  # the blank line stays, in its place
    assert out.steps == ["0001", "0002"]
    # step 0001 changed lines 1 and 2 only: it says so; step 0002 changed every line
    assert out.patches == {"0001": {"changed": [1, 2]}}
    back = down_lines(down_lines(out.data, out.patches.get("0002"), b), out.patches["0001"], a)
    assert back == data
    assert out.counts == {"0001": {"tagged": 2}, "0002": {"tagged": 3}}


def test_what_an_inverse_cannot_rebuild_is_kept_only_for_a_reason_the_step_declares():
    spaced = b'{"x": 1}\n'  # (another writer's spelling: the inverse writes Go's)
    out = forward_lines(REL, spaced, [Tag()], {"0001": "A"})
    assert out.kept == {"0001": {"another writer's spelling": 1}}
    assert out.patches["0001"]["lines"] == {"1": '{"x": 1}'}
    assert down_lines(out.data, out.patches["0001"], Tag()) == spaced


def test_a_broken_inverse_is_a_bug_not_a_patch():
    out = forward_lines(REL, lines({"x": 1}), [Lossy()], {"0001": "A"})
    assert out.bug and "does not give back the line it was given" in out.bug
    assert not out.changed


def test_a_quarantined_line_is_blanked_and_put_back_in_its_place():
    data = lines({"x": 1}, {"bad": True}, {"x": 3})
    strict = forward_lines(REL, data, [Picky()], {"0001": "A"})
    assert [str(p) for p in strict.problems] == [f"{REL}:2: bad: bad line"]
    out = forward_lines(REL, data, [Picky()], {"0001": "A"}, quarantine=True)
    assert out.data.split(b"\n")[1] == b"" and out.counts["0001"]["lines quarantined"] == 1
    assert down_lines(out.data, out.patches["0001"], Picky()) == data


def test_a_file_without_its_final_newline_gets_it_and_gives_it_back():
    data = lines({"x": 1})[:-1]
    out = forward_lines(REL, data, [Tag()], {"0001": "A"})
    assert out.data.endswith(b"\n") and out.patches["0001"] == {"no_final_newline": True}
    assert down_lines(out.data, out.patches["0001"], Tag()) == data
    untouched = forward_lines(REL, lines({"x": 1, "tag": 0})[:-1], [Tag()], {"0001": "A"})
    assert not untouched.changed  # (no line changed: not even a newline added)


def test_which_line_steps_a_file_gets_its_content_says():
    a, b = Tag("0001"), Tag("0002")
    reg = Registry([a, b])
    assert line_steps(1, "0002", "0002", reg) == [a, b]  # a v1 line: every step (catch-up)
    assert line_steps(2, "0002", "0002", reg) == []  # v2 at head: none
    assert line_steps(2, "0001", "0002", reg) == [b]  # the repo moves through 0002
    assert line_steps(None, None, "0002", reg) == []  # no line at all


class Count(DerivedStep):
    """A derived file: ``{"n": count, "at": ...}``; its change set is the old values."""

    id, name = "0003", "count"

    def derive(self, rel, data, prepared):
        doc = json.loads(data)
        if doc["n"] == prepared:
            return Derivation(data)
        old = {"n": doc["n"], "at": doc["at"]}
        doc |= {"n": prepared, "at": "now"}
        return Derivation(codec.dumps_bytes(doc), {"old": old, "new": dict(doc)})

    def revert(self, rel, data, changes):
        doc, counts = json.loads(data), Counter()
        for key, value in changes["old"].items():
            if doc[key] == changes["new"][key]:
                doc[key] = value
                counts["back"] += 1
            else:
                counts[f"{key} kept as their writer set it"] += 1
        return codec.dumps_bytes(doc), counts


def test_a_derived_file_records_what_it_set_and_takes_back_what_still_holds():
    data = b'{"n":1,"at":"then"}'
    out = forward_derived("data/queues/q.json", data, Count(), 5)
    assert out.changed and out.patches["0003"]["old"] == {"n": 1, "at": "then"}
    assert forward_derived("data/queues/q.json", out.data, Count(), 5).changed is False
    state = FileState("data/queues/q.json", [Applied("r1", "0003", out.patches["0003"])])
    back = backward("data/queues/q.json", out.data, state, [Count()])
    assert back.rule == EXACT and back.data == data
    theirs = b'{"n":5,"at":"their save"}'  # (another writer saved since: its at stays)
    back = backward("data/queues/q.json", theirs, state, [Count()])
    assert back.rule == ENTRIES and json.loads(back.data) == {"n": 1, "at": "their save"}


def test_each_file_gets_one_rule_on_the_way_back():
    tag = Tag()
    out = forward_lines(REL, lines({"x": 1}), [tag], {"0001": "A"})
    state = FileState(REL, [Applied("r1", "0001", out.patches.get("0001"))])
    assert backward(REL, None, state, [tag]).rule == GONE  # deleted since: left deleted
    assert backward(REL, out.data, state, [tag]).rule == EXACT
    old = FileState(REL, state.applied, after=checksum(out.data))  # (migrate 0.3's record)
    assert backward(REL, b'{"y":1}\n', old, [tag]).rule == THEIRS  # replaced since
    assert backward(REL, out.data, FileState(REL), [tag]).rule == ""  # nothing of migrate's


def test_the_registry_refuses_what_would_break_a_run():
    a, b = Tag("0001"), Tag("0002")
    with pytest.raises(RegistryError, match="in order"):
        Registry([b, a])
    with pytest.raises(RegistryError, match="in order"):
        Registry([a, a])
    with pytest.raises(RegistryError, match="last of its family"):
        Registry([Count(), _queue_line_step()])  # (a queue step after the derived one)
    reg = Registry([a, Count(), Tag("0004", "later")])  # (a failure step after it: fine)
    assert reg.pos("0004") == 2 and reg.first_of_family(a) and not reg.first_of_family(reg[2])
    assert [s.id for s in reg.between("0001", "0004")] == ["0003", "0004"]


def _queue_line_step():
    from migrate.steps.base import Family

    step = Tag("0004")
    step.family = Family.QUEUES
    return step
