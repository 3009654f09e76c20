"""Showing life during long phases (reading, computing, replacing files), on stderr.

The engine asks for a phase by name and size (``phase("0001+0002 failure files", 56778)``)
and wraps what it iterates. On a terminal: a tqdm bar with the phase's name, a total
and an ETA, shown after half a second. Elsewhere (a CI log): one line per phase once it
is done, with its count and time, so a log shows life without a bar's control codes.
``-q`` turns both off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from migrate import clock

T = TypeVar("T")
Wrap = Callable[[Iterable[T]], Iterable[T]]
Phase = Callable[[str, int], Wrap]


def progress_for(args: Any, command: str, tty: bool | None = None) -> Phase | None:
    """A phase factory for ``command``, or None when quiet (``-q``)."""
    if getattr(args, "quiet", False):
        return None
    if tty if tty is not None else sys.stderr.isatty():
        return lambda desc, total: _bar(f"{command}: {desc}", total)
    return lambda desc, total: _line(f"{command}: {desc}", total)


def _bar(desc: str, total: int) -> Wrap:
    from tqdm import tqdm  # (imported where a bar is shown: 0.07 s a start otherwise)

    def wrap(items: Iterable[T]) -> Iterator[T]:
        with tqdm(
            total=total, desc=desc, unit=" files", file=sys.stderr, delay=0.5, leave=False
        ) as bar:
            for item in items:
                bar.update()
                yield item

    return wrap


def _line(desc: str, total: int) -> Wrap:
    def wrap(items: Iterable[T]) -> Iterator[T]:
        start, n = clock.monotonic(), 0
        for item in items:
            n += 1
            yield item
        print(f"{desc}: {n} file(s) in {clock.monotonic() - start:.1f}s", file=sys.stderr)

    return wrap


def phase(progress: Phase | None, desc: str, total: int) -> Wrap | None:
    """``progress(desc, total)``, or None when there is no progress to show."""
    return progress(desc, total) if progress is not None and total else None
