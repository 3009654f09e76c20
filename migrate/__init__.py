"""migrate: data migration and backfill for tsuku's batch-pipeline failure records and queues.

Library first: every CLI verb is a function in :mod:`migrate.api`.
"""

__version__ = "0.1.0"
