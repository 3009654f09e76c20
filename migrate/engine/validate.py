"""The engine's check of what steps write, before anything is committed.

Every line a failure step changed is validated against the model of its shape and
version, every queue a queue step rewrote against its model (and it holds no key outside the
struct of the queue's writer). A line that fails is told
apart: if the line the step was given is itself invalid, that is a problem in the data;
otherwise the step wrote what its own model refuses, a bug in migrate.
"""

from __future__ import annotations

from migrate import codec
from migrate.reader import Problem, parse_line, split_lines


def output_problems(
    family: str, rel: str, old: bytes, new: bytes, version: int
) -> tuple[list[Problem], list[Problem]]:
    """(problems in the data, lines a step wrote wrong) of a file's new bytes."""
    if family == "queues":
        from migrate.queues import checked_queue, queue_doc

        found, _ = checked_queue(rel, new)  # (validated once per content in a process)
        doc = queue_doc(rel, new) or {}
        entries = doc.get("entries", doc.get("packages", []))
        if not found and any("blocked_by" in e for e in entries):  # (the writer drops it)
            found.append(Problem(rel, 1, "a queue written with blocked_by in an entry"))
        return _blame(found, checked_queue(rel, old)[0]) if found else ([], [])
    before = dict(split_lines(old))
    data: list[Problem] = []
    bugs: list[Problem] = []
    for lineno, raw in split_lines(new):
        if not raw.strip() or before.get(lineno) == raw:
            continue  # blank, or not changed by the run
        pl = parse_line(rel, lineno, raw, codec.loads_trusted, notes=False)  # (this run's)
        problems = pl.problems or (
            [Problem(rel, lineno, f"expected schema_version {version}", "schema_version")]
            if pl.version != version
            else []
        )
        if problems:
            d, b = _blame(problems, _line_problems(rel, lineno, before.get(lineno)))
            data.extend(d)
            bugs.extend(b)
    return data, bugs


def _line_problems(rel: str, lineno: int, raw: bytes | None) -> list[Problem]:
    if raw is None or not raw.strip():
        return []
    return parse_line(rel, lineno, raw).problems


def _blame(
    problems: list[Problem], source_problems: list[Problem]
) -> tuple[list[Problem], list[Problem]]:
    """(the input's own problems, []) when it has some: bad data; else ([], the output's):
    a step wrote what its model refuses."""
    return (source_problems, []) if source_problems else ([], problems)
