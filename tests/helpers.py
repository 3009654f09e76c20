"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root/data`` as {relative path: bytes} (the ledger included)."""
    data = root / "data"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def data_only(snap: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in snap.items() if not k.startswith("data/.migrate")}


def refused_up(root: Path):
    """Run ``migrate up`` on ``root``, expect a refusal that wrote nothing; the error."""
    import pytest

    from migrate import engine
    from migrate.errors import BadInputError
    from migrate.repo import DataRepo

    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(DataRepo(root))
    assert snapshot(root) == before
    return exc.value
