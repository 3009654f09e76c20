"""The engine: plans, applies and reverts steps, keeping the ledger honest.

* :mod:`.lifecycle` — the pure core: every rule about one file's life, bytes in, bytes out;
* :mod:`.plan` — which steps a run applies or reverts, and to which files (a value);
* :mod:`.survey` — where each failure file stands and what the gathering steps need;
* :mod:`.forward` — ``up``: every file through its steps once, in memory, then written;
* :mod:`.backward` — ``down``: the same, backwards, all or nothing;
* :mod:`.state` — status, history, verify; :mod:`.recipes` — the recipes tree a run uses;
* :mod:`.validate` — what steps write is checked against its model before any commit.

Every file is read and written through the store (:mod:`migrate.store`).
"""

from migrate.engine.backward import down
from migrate.engine.forward import up
from migrate.engine.plan import Plan, plan, resolve_target
from migrate.engine.report import RunReport, StepReport
from migrate.engine.state import history, status, verify
from migrate.layout import ARCHIVE

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
