"""What adding a step takes (issue 27): its module (here, in the test), its line functions,
and the registry. A throwaway step 0004 that tags every failure line runs through the real
engine on the sample repo: `up` applies it after 0003 (queue status derived again from the
records it leaves), `down` takes it back exactly, and the ledger records it like any other."""

from __future__ import annotations

import json

from migrate import engine
from migrate.steps import REGISTRY, Registry
from migrate.steps.base import LineStep
from migrate.store import Store
from tests.helpers import run_files, snapshot


class Reviewed(LineStep):
    """Step 0004 (an example): ``"reviewed": false`` on every record of a v2 line."""

    id = "0004"
    name = "reviewed-flag"
    description = "state on every record whether a maintainer reviewed it"
    produces = 2

    def line_up(self, line, at, prepared, tally):
        records = line.get("failures", [line])
        if all("reviewed" in r for r in records):
            return None
        tally.counts["records flagged"] += len(records)
        if "failures" in line:
            return {**line, "failures": [{**r, "reviewed": False} for r in records]}
        return {**line, "reviewed": False}

    def line_down(self, line):
        def strip(r):
            return {k: v for k, v in r.items() if k != "reviewed"}

        if "failures" in line:
            return {**line, "failures": [strip(r) for r in line["failures"]]}
        return strip(line)


def test_a_new_step_is_its_module_its_line_functions_and_a_registry_entry(fixture_repo):
    registry = Registry([*REGISTRY, Reviewed()])
    root = fixture_repo("sample")
    original = snapshot(root)
    store = Store(root)
    run = engine.up(store, registry=registry)
    assert [s.id for s in run.plan.steps] == ["0001", "0002", "0003", "0004"]
    f = root / "data" / "failures" / "homebrew-2026-02-07T03-03-36Z.jsonl"
    assert all(r["reviewed"] is False for r in json.loads(f.read_text())["failures"])
    (ledger_run,) = run_files(root)
    head = json.loads(ledger_run.read_text().split("\n")[0])
    assert head["to"] == "0004" and head["steps"] == ["0001", "0002", "0003", "0004"]
    at_0004 = snapshot(root)
    engine.down(store, "0003", registry=registry)  # 0004 only: the flags go, exactly
    assert "reviewed" not in f.read_text()
    engine.up(store, registry=registry)
    assert {k: v for k, v in snapshot(root).items() if "/.migrate/" not in k} == {
        k: v for k, v in at_0004.items() if "/.migrate/" not in k
    }
    engine.down(store, "base", registry=registry)
    assert snapshot(root) == original
