"""Blocker-name hygiene shared by every evidence reader."""

from __future__ import annotations


def valid_name(name: str) -> bool:
    """Upstream rejects dependency names containing ``/``, ``\\``, ``..``, ``<`` or ``>``."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and "<" not in name
        and ">" not in name
        and not name.isspace()
    )


def merge(*lists: list[str]) -> list[str]:
    """Union in first-seen order, no duplicates (upstream keeps names verbatim)."""
    out: list[str] = []
    for names in lists:
        for n in names:
            if n not in out:
                out.append(n)
    return out
