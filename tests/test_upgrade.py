"""A repo migrated by migrate 0.3.1 (ledger format 2, its gather index committed beside
each run, blocked_by in the queue) upgraded by this version: read as it is, caught up by
`up` (the index files taken out of the commit, the queue's blocked_by cleaned), rolled
back by `down --to base` to the exact bytes 0.3.1 started from."""

from __future__ import annotations

import json
import shutil

from migrate.cli import main
from tests.conftest import FIXTURES, copy_repo
from tests.helpers import snapshot


def test_a_ledger_written_by_0_3_1_is_upgraded_and_rolls_back_exactly(tmp_path, capsys):
    live = copy_repo(FIXTURES / "migrated-0.3.1", tmp_path / "live")
    # what 0.3.1 started from: the sample, then one batch (fixtures/replay/01-batch)
    pristine = copy_repo(FIXTURES / "sample", tmp_path / "pristine")
    batch = FIXTURES / "replay" / "01-batch" / "data" / "failures"
    for f in batch.iterdir():
        shutil.copyfile(f, pristine / "data" / "failures" / f.name)
    runs = live / "data" / ".migrate" / "runs"
    assert [
        json.loads(p.read_text().split("\n")[0])["format"]
        for p in sorted(runs.glob("*[0-9a-f].jsonl"))
    ] == [2, 2]
    assert len(list(runs.glob("*.index.jsonl"))) == 2
    queue = live / "data" / "queues" / "priority-queue.json"
    assert '"blocked_by"' in queue.read_text()

    assert main(["status", "--repo", str(live)]) == 0
    assert "current: 0003" in capsys.readouterr().out
    assert main(["up", "-q", "--repo", str(live)]) == 0
    assert list(runs.glob("*.index.jsonl")) == []  # (a cache now, kept out of the commit)
    assert '"blocked_by"' not in queue.read_text()
    newest = sorted(runs.glob("*[0-9a-f].jsonl"))[-1]
    assert json.loads(newest.read_text().split("\n")[0])["format"] == 3
    assert main(["verify", "--repo", str(live)]) == 0
    assert main(["check", "--at-head", "-q", "--repo", str(live)]) == 0

    assert main(["down", "--to", "base", "-q", "--repo", str(live)]) == 0
    assert snapshot(live) == snapshot(pristine)
