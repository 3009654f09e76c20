"""migrate: data migration and backfill for tsuku's batch-pipeline failure records and queues.

Library first: every CLI verb is a plain function (engine.up, check.check_repo, ...).
"""

__version__ = "0.4.0"
