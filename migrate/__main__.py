from migrate.cli import run

raise SystemExit(run())
