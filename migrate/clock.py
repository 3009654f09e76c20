"""The one place the tool reads the clock. Tests freeze it with freezegun."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """Current UTC time, timezone-aware."""
    return datetime.now(UTC)


def now_iso() -> str:
    """Current UTC time as ``2026-02-07T03:03:36Z`` (seconds precision, like the queues)."""
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def monotonic() -> float:
    """Monotonic seconds, for durations and progress decisions only."""
    return time.monotonic()
