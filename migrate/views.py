"""The queues as the records explain them: every entry under tsuku's rules and under the
tool's own judgement (:mod:`migrate.status_rules`), for ``check``, ``report`` and
``explain``. Blockers come from the records (the queue keeps none): what every record of
an entry's name says, as step 0003 reads them, with the recipes tree the queue was last
derived with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.engine.plan import known_ledger
from migrate.engine.recipes import recorded
from migrate.engine.survey import survey
from migrate.queues import parsed_queue
from migrate.steps import REGISTRY
from migrate.steps.base import Gathers, RunOptions, run_context
from migrate.steps.s0003_queue_status import Context, QueueStatus, Verdict
from migrate.store import cache


@dataclass
class QueueViews:
    version: str | None  # the repo's version
    recipes: str | None  # the recipes tree used (as the last run derived with)
    context: Context
    queues: dict[str, list[Verdict]] = field(default_factory=dict)  # path -> its entries
    kinds: dict[str, str] = field(default_factory=dict)  # path -> legacy/unified

    @property
    def findings(self):
        return [v.finding for vs in self.queues.values() for v in vs if v.finding is not None]


def queue_views(store, jobs: int = 1, recipes: str | None = None) -> QueueViews:
    """Every priority queue that parses, each entry with both verdicts."""
    ledger = known_ledger(store)
    tree = recipes if recipes is not None else recorded(store, ledger)
    ctx = run_context(store, RunOptions(recipes=tree))
    step = _step()
    prepared = step.prepare(ctx)
    gatherers = [s for s in REGISTRY if isinstance(s, Gathers)]
    versions = {s.id: s.part_version for s in gatherers}
    rels = store.failure_rels()
    seen = survey(store, rels, gatherers, ctx.names, cache.load(store, versions, ctx.names), jobs)
    step.combine(
        prepared,
        ((rel, cache.parts_of(s.parts, step.id)) for rel, s in seen.items() if s.parts),
    )
    return _views(store, ledger.current, tree, prepared)


def views_of(store, done) -> QueueViews:
    """The views an ``up`` at head computed on the way (:func:`migrate.engine.compute.compute`):
    the records as that run leaves them, the queues as they are."""
    step = _step()
    prepared = done.prepared.get(step.id)
    if prepared is None:  # (no queue to derive)
        return QueueViews(done.plan.current, done.ctx.options.recipes, None)
    return _views(store, done.plan.current, done.ctx.options.recipes, prepared)


def _step() -> QueueStatus:
    return next(s for s in REGISTRY if isinstance(s, QueueStatus))


def _views(store, version: str | None, tree: str | None, prepared: Context) -> QueueViews:
    step = _step()
    out = QueueViews(version, tree, prepared)
    for rel in store.queue_rels():
        pq = parsed_queue(rel, store.read_bytes(rel))
        if pq.problems or pq.kind not in ("legacy", "unified"):
            continue
        out.queues[rel] = step.verdicts(rel, pq.kind, pq.entries, prepared)
        out.kinds[rel] = pq.kind
    return out
