"""The console script: signal handling in place before the heavy imports.

Importing the CLI loads numpy, psycopg, matplotlib and friends, which takes about a
second; a Ctrl-C or SIGTERM in that second would otherwise end in a traceback or in
silence. The CLI installs its own handlers once it runs.
"""

from __future__ import annotations

import signal
import sys

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
        print(f"pgvbench: terminated ({exc.name}) while starting", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("pgvbench: interrupted while starting", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":  # python -m pgvbench._entry, as the console script runs it
    sys.exit(main())
