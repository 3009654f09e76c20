"""``python -m migrate`` and the ``migrate`` command."""

# the C module, loaded with the interpreter: `import signal` builds its enums first (2 ms
# in which a Ctrl-C printed a traceback through this file)
import _signal as signal
import sys


def entry() -> int:
    """The program. A Ctrl-C while its modules load ends like one later (``interrupted``,
    exit 130), never with a traceback: SIGINT waits until they are loaded (a
    KeyboardInterrupt raised while orjson initialises crashes Python, one raised inside
    pydantic's import machinery prints tracebacks Python ignores). The modules nearly every
    command needs load here, first, for that: 0.2 s that ``--version`` pays too."""
    try:
        block = hasattr(signal, "pthread_sigmask")
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if block else None
        try:
            import migrate.check  # noqa: F401 - what nearly every command loads
            import migrate.engine  # noqa: F401 - (steps, models: pydantic, orjson)
            from migrate.cli import run
        finally:
            if block:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return run()
    except KeyboardInterrupt:
        print("migrate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(entry())
