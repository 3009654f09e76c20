"""Map a function over files, in N forked processes when asked (``--jobs N``).

Forked workers inherit the function and everything it closes over, so nothing but the
file names and the (small) per-file results crosses a process boundary. Results come back
in the order of the files, so a reduction gives the same answer as a serial run.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_FN: dict[str, Callable[[str], Any]] = {}


def _init(fn: Callable[[str], Any]) -> None:
    _FN["fn"] = fn


def _call(rel: str) -> Any:
    return _FN["fn"](rel)


def map_files(
    fn: Callable[[str], T],
    rels: list[str],
    jobs: int = 1,
    progress: Callable[[Iterable[T]], Iterable[T]] | None = None,
) -> Iterator[T]:
    if jobs <= 1 or len(rels) <= 1:
        results: Iterable[T] = map(fn, rels)
        yield from progress(results) if progress else results
        return
    chunk = max(1, min(256, len(rels) // (jobs * 8) or 1))
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(fn,)) as pool:
        results = pool.map(_call, rels, chunksize=chunk)
        yield from progress(results) if progress else results
