"""The console script: signal handling in place before the heavy imports.

Importing the CLI loads numpy, psycopg, matplotlib and friends, which takes about a
second; a Ctrl-C or SIGTERM in that second would otherwise end in a traceback or in
silence. The CLI installs its own handlers once it runs.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from ._leave import leave
from .errors import Terminated


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        from .cli import main as cli_main
    except Terminated as exc:
        _exit_while_starting(f"terminated ({exc.name})", 128 + exc.signum)
    except KeyboardInterrupt:
        _exit_while_starting("interrupted", 130)
    return leave(cli_main())


def _exit_while_starting(what: str, code: int) -> NoReturn:
    """Leave at once: nothing has started, and the interpreter's own teardown after an
    import broken by a signal sometimes ends the process by SIGINT instead of ``code``
    (seen with ``python -m``: exit status -2 in about half the tries)."""
    print(f"pgvbench: {what} while starting", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":  # python -m pgvbench._entry, as the console script runs it
    sys.exit(main())
