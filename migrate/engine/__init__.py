"""The engine: plans, applies and reverts steps, keeping the ledger honest.

* :mod:`.plan` — which steps a run applies or reverts (a value);
* :mod:`.forward` — ``up``: every file through the planned steps once, in memory;
* :mod:`.backward` — ``down``: the same, backwards, all or nothing;
* :mod:`.commit` — the staging archive, the pending ledger run, one write and rename per
  file: a killed run is finished by the next one;
* :mod:`.validate` — what steps write is checked against its model before any commit;
* :mod:`.state` — status, history, verify.
"""

from migrate.engine.backward import down
from migrate.engine.commit import ARCHIVE
from migrate.engine.forward import up
from migrate.engine.plan import Plan, plan, resolve_target
from migrate.engine.report import RunReport, StepReport
from migrate.engine.state import history, status, verify

__all__ = [
    "ARCHIVE",
    "Plan",
    "RunReport",
    "StepReport",
    "down",
    "history",
    "plan",
    "resolve_target",
    "status",
    "up",
    "verify",
]
