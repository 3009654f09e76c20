"""Progress bars: tqdm on stderr, only on a terminal, only for runs longer than a second."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_for(args: Any, what: str) -> Callable[[Iterable[T]], Iterable[T]] | None:
    """A wrapper for an iterable of files, or None when the bar must stay off."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def wrap(items: Iterable[T]) -> Iterable[T]:
        return tqdm(items, desc=what, unit="file", file=sys.stderr, delay=1.0, leave=False)

    return wrap
