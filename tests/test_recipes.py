"""The repo's recipes (tsuku keeps them in `recipes/` of the same repo): used by default,
`--recipes DIR` / `--no-recipes` override, what a run used is recorded and the next runs
use the same; `explain` reads the queue with what it was derived with."""

from __future__ import annotations

import json
from pathlib import Path

from migrate import engine
from migrate.cli import main
from migrate.steps.base import RunOptions
from migrate.store import Store
from tests.conftest import CORPUS, FIXTURES, copy_repo, corpus_snapshot
from tests.helpers import run_files
from tests.test_live_repo import apply_commit
from tests.test_step_0003 import by_name

QUEUE = "data/queues/priority-queue.json"


def statuses(root: Path) -> dict[str, str]:
    return {e["source"]: e["status"] for e in json.loads((root / QUEUE).read_text())["entries"]}


def with_recipes(src: Path, dest: Path) -> tuple[Path, list[str]]:
    """A copy of ``src`` with recipes for every other blocker its records name that has a
    queue entry (as tsuku's `recipes/<letter>/<name>.toml`)."""
    root = copy_repo(src, dest)
    names = {e["name"] for e in json.loads((root / QUEUE).read_text())["entries"]}
    blockers = sorted({b for bs in by_name(root)["blockers"] for b in bs} & names)[::2]
    for n in blockers:
        p = root / "recipes" / n[0] / f"{n}.toml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'[metadata]\nname = "{n}"\n')
    return root, blockers


def test_on_a_march_tree_the_repos_recipes_are_used_by_default_and_kept(tmp_path):
    base = corpus_snapshot("2026-03-02")
    plain, landed = with_recipes(base, tmp_path / "plain")
    given, _ = with_recipes(base, tmp_path / "given")
    without, _ = with_recipes(base, tmp_path / "without")
    assert landed
    engine.up(Store(plain))
    engine.up(Store(given), options=RunOptions(recipes="recipes"))
    engine.up(Store(without), options=RunOptions(no_recipes=True))
    assert statuses(plain) == statuses(given)
    off = statuses(without)
    requeued = {p for p, s in statuses(plain).items() if off[p] != s}
    assert requeued  # (recipes change what is blocked)
    (run,) = run_files(plain)
    assert json.loads(run.read_text().split("\n")[0])["options"]["recipes"] == "recipes"
    # a later plain catch-up (a batch landed) derives with the same recipes: nothing of
    # theirs is blocked again; it equals a fresh migration of the same tree
    commit = CORPUS / "replay-2026-03-03" / "02-c59d497d7"
    apply_commit(plain, commit)
    engine.up(Store(plain))
    fresh, _ = with_recipes(base, tmp_path / "fresh")
    apply_commit(fresh, commit)
    engine.up(Store(fresh))
    after = statuses(plain)
    assert after == statuses(fresh)
    assert all(after[p] != "blocked" for p in requeued)


def test_a_recipes_tree_given_once_is_used_by_every_later_run(fixture_repo, tmp_path):
    """`--recipes` at head derives again with it (it said "nothing to do"); `down --to
    0002 && up --recipes` then a plain catch-up keeps the recipes (it blocked again)."""
    root = fixture_repo("early-layout")
    recipes = tmp_path / "tree"
    (recipes / "a").mkdir(parents=True)
    (recipes / "a" / "ada-url.toml").write_text('[metadata]\nname = "ada-url"\n')
    engine.up(Store(root))
    q = root / "data" / "priority-queue.json"

    def node():
        return {p["id"]: p["status"] for p in json.loads(q.read_text())["packages"]}[
            "homebrew:node"
        ]

    assert node() == "blocked"
    assert main(["up", "--repo", str(root), "--recipes", str(recipes), "-q"]) == 0
    assert node() == "pending"
    engine.down(Store(root), "0002")
    assert main(["up", "--repo", str(root), "--recipes", str(recipes), "-q"]) == 0
    apply_commit(root, FIXTURES / "replay" / "03-batch")
    assert main(["up", "--repo", str(root), "-q"]) == 0  # (no option: the same tree)
    assert node() == "pending"
    assert main(["explain", "--repo", str(root), "homebrew:node", "--json"]) == 0
    recipes.rename(tmp_path / "moved")  # (what the last run used is gone: said, not guessed)
    assert main(["up", "--repo", str(root)]) == 2
    assert main(["up", "--repo", str(root), "--no-recipes", "-q"]) == 0
    assert node() == "blocked"
