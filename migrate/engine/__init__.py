"""The engine: plans, applies and reverts steps, keeping the ledger honest.

* :mod:`.plan` — which steps a run applies or reverts (a value);
* :mod:`.forward` — ``up``: every file through the planned steps once, in memory;
* :mod:`.backward` — ``down``: the same, backwards, all or nothing;
* :mod:`.commit` — staging, the pending ledger run, renames: a killed run is finished by
  the next one;
* :mod:`.validate` — what steps write is checked against its model before any commit;
* :mod:`.state` — status, history, verify.
"""

from migrate.engine.backward import down
from migrate.engine.commit import STAGE_SUFFIX
from migrate.engine.forward import up
from migrate.engine.plan import Plan, plan, resolve_target
from migrate.engine.report import RunReport, StepReport
from migrate.engine.state import history, status, verify

__all__ = [
    "STAGE_SUFFIX",
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
