"""Which recipes tree a run derives queue status with (design.md: the repo's recipes).

tsuku keeps its recipes in ``recipes/`` of the same repo, and its workflow marks the
queue entry of every recipe on disk ``success``. So ``up`` uses ``recipes/`` at the
repo's root when there is one; ``--recipes DIR`` and ``--no-recipes`` override; the
choice is recorded in the run's options, and a later run without either takes the same
(a catch-up never derives with other recipes than the run before it, silently). A tree
outside the repo is recorded by name and digest (no local path is committed); its path
is remembered in migrate's cache (never committed), for the next runs on this clone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migrate.errors import UsageError
from migrate.steps.base import RunOptions

DEFAULT = "recipes"
MEMORY = "recipes.json"  # in the store's cache: the local path of a tree outside the repo


def resolve_recipes(store, ledger, options: RunOptions) -> RunOptions:
    """``options`` with ``recipes`` the folder a run uses, or None (see the module)."""
    from dataclasses import replace

    given: Any = options.recipes
    if options.no_recipes:
        return replace(options, recipes=None)
    if given:
        path = Path(given) if Path(given).is_absolute() else store.root / given
        if not path.is_dir():
            raise UsageError(f"{given}: not a directory (--recipes takes a folder)")
        return replace(options, recipes=str(path.resolve()))
    return replace(options, recipes=recorded(store, ledger, strict=True))


def recorded(store, ledger, strict: bool = False) -> str | None:
    """The recipes tree the last ``up`` derived with, else the repo's ``recipes/`` (None:
    none). ``strict``: a recorded tree that cannot be found is an error, not a silent
    change of what status is derived from."""
    options = ledger.last_up_options()
    if options is not None and "recipes" in options:
        value = options["recipes"]
        if value is False or value is None:
            return None
        if isinstance(value, str) and store.path(value).is_dir():
            return str(store.path(value))
        if isinstance(value, dict) and (local := remembered(store, value)):
            return local
        if strict:
            where = value if isinstance(value, str) else f"{value.get('name')} (outside the repo)"
            raise UsageError(
                f"the last run derived queue status with the recipes tree {where}, which is"
                " not there now",
                hint="pass --recipes DIR to use it (or another), or --no-recipes",
            )
        return None
    default = store.path(DEFAULT)
    return str(default) if default.is_dir() else None


def remember(store, path: str | None, record: Any) -> None:
    """Where a tree outside the repo is on this machine (best effort: a cache)."""
    if not isinstance(record, dict) or not path:
        return
    store.write_cache(MEMORY, json.dumps({"name": record["name"], "path": path}))


def remembered(store, record: dict[str, Any]) -> str | None:
    try:
        doc = json.loads(store.read_cache(MEMORY) or "{}")
    except ValueError:
        return None
    path = doc.get("path") if doc.get("name") == record.get("name") else None
    return path if isinstance(path, str) and Path(path).is_dir() else None
