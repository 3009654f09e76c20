"""Merging blocker names from several sources (their rule is the model's:
:func:`migrate.models.valid_blocker_name`)."""

from __future__ import annotations


def merge(*lists: list[str]) -> list[str]:
    """Union in first-seen order, no duplicates (upstream keeps names verbatim)."""
    out: list[str] = []
    for names in lists:
        for n in names:
            if n not in out:
                out.append(n)
    return out
