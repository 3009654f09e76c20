"""The committed JSON Schemas are exactly what the models generate (`migrate schemas`)."""

from __future__ import annotations

import pytest

from migrate.schemas import SCHEMAS, default_dir, render, write_all


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_up_to_date(name):
    path = default_dir() / name
    assert path.exists(), f"{name} missing: run `migrate schemas`"
    assert path.read_text(encoding="utf-8") == render(SCHEMAS[name]), (
        f"schemas/{name} is stale: run `migrate schemas` and commit"
    )


def test_no_stray_schema_files():
    assert {p.name for p in default_dir().glob("*.json")} == set(SCHEMAS)


def test_write_all_writes_into_a_given_folder(tmp_path):
    written = write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(SCHEMAS)
    assert '"schema_version"' in (tmp_path / "failure-envelope.v2.schema.json").read_text()
