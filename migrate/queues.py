"""Queue lookups shared by the steps: which package a recipe name means.

Shape B lines in ``batch-*`` files name a recipe but not its ecosystem. The queue is the
only place that says which package a name belongs to; a name is resolved only when it is
unambiguous. The unified queue (current) is preferred over the stale legacy ones.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections import defaultdict

import orjson

from migrate.errors import MigrateError
from migrate.reader import ParsedQueue, Problem, parse_queue
from migrate.store import Store

_CHECKED: dict[tuple[str, bytes], tuple[list[Problem], str | None, ParsedQueue | None]] = {}


def _checked(rel: str, data: bytes) -> tuple[list[Problem], str | None, ParsedQueue | None]:
    key = (rel, hashlib.sha256(data).digest())
    hit = _CHECKED.get(key)
    if hit is None:
        try:
            pq = parse_queue(rel, data)
            # (without the validated model: nothing reads it later, and it is as big as
            # the queue)
            hit = (list(pq.problems), pq.kind, dataclasses.replace(pq, model=None))
        except MigrateError as exc:
            hit = ([Problem(rel, 0, str(exc).removeprefix(rel + ": "))], None, None)
        if len(_CHECKED) > 64:
            _CHECKED.clear()
        _CHECKED[key] = hit
    return hit


def checked_queue(rel: str, data: bytes) -> tuple[list[Problem], str | None]:
    """(problems, kind) of one queue file, validated once per content in a process: every
    planned step's preflight asks, and a 4 MB queue takes a tenth of a second to check."""
    problems, kind, _ = _checked(rel, data)
    return list(problems), kind


def parsed_queue(rel: str, data: bytes) -> ParsedQueue:
    """:func:`migrate.reader.parse_queue` of a queue, from the check above when it was made
    (forked workers inherit it), with a document of its own that the caller may change."""
    problems, _, pq = _checked(rel, data)
    if pq is None or problems:
        return parse_queue(rel, data)  # (the same problems, raised or listed as before)
    try:  # a deep copy: orjson round-trips a validated queue exactly (no floats in it)
        obj = orjson.loads(orjson.dumps(pq.obj))
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a lone surrogate
        obj = copy.deepcopy(pq.obj)
    return dataclasses.replace(pq, obj=obj, problems=list(pq.problems))


def queue_problems(repo: Store) -> list[Problem]:
    """Problems of every priority queue (steps refuse to run on a broken queue: a queue
    skipped silently would change which package a recipe name resolves to)."""
    out: list[Problem] = []
    for rel in repo.queue_files():
        if rel.endswith("/batch-results.json"):
            continue
        try:
            out.extend(checked_queue(rel, repo.read_bytes(rel))[0])
        except MigrateError as exc:
            out.append(Problem(rel, 0, str(exc).removeprefix(rel + ": ")))
    return out


def queue_doc(rel: str, data: bytes) -> dict | None:
    """The decoded priority queue (legacy or unified) in ``data``, or None when it is not
    one, or not a valid one: the document the check above decoded (once per content in a
    process; each step's preflight and prepare asks). It is shared: callers read it and
    never change it (:func:`parsed_queue` gives a copy to change)."""
    problems, _, pq = _checked(rel, data)
    if problems or pq is None or pq.kind not in ("legacy", "unified"):
        return None
    return pq.obj


def load_queue_docs(repo: Store) -> dict[str, dict]:
    """{rel: decoded queue document} for the priority queues that decode cleanly
    (callers that write run :func:`queue_problems` first, in their preflight). The
    documents are shared (:func:`queue_doc`): read them, do not change them."""
    out = {}
    for rel in repo.queue_files():
        doc = queue_doc(rel, repo.read_bytes(rel))
        if doc is not None:
            out[rel] = doc
    return out


def queue_ids(repo: Store) -> frozenset[str]:
    """The package id of every entry of every priority queue."""
    return frozenset(
        entry_id(entry)
        for doc in load_queue_docs(repo).values()
        for entry in doc.get("packages", doc.get("entries", []))
    )


def entry_id(entry: dict) -> str:
    """The package id of a queue entry: legacy ``id``, unified ``source``."""
    return entry.get("id") or entry.get("source") or ""


def name_index(docs: dict[str, dict]) -> dict[str, str | None]:
    """recipe name -> package id, or None when the name is ambiguous.

    Built from the unified queue when there is one, else from the legacy queues.
    """
    unified = [d for d in docs.values() if "entries" in d]
    chosen = unified or [d for d in docs.values() if "packages" in d]
    ids: dict[str, set[str]] = defaultdict(set)
    for doc in chosen:
        entries = doc.get("entries", doc.get("packages", []))
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and isinstance(e.get("name"), str) and entry_id(e):
                ids[e["name"]].add(entry_id(e))
    return {name: (next(iter(s)) if len(s) == 1 else None) for name, s in ids.items()}
