"""``carto-provider``: the command line of airflow-provider-carto.

* ``carto-provider emulator [--host H] [--port N]``: run the CARTO emulator and print the settings
  (``AIRFLOW_CONN_CARTO_DEFAULT``, ``CARTO_AUTH_URL``) that point Airflow and ``CartoAuth`` at it.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence

Command = Callable[[argparse.Namespace], int]


def _emulator(args: argparse.Namespace) -> int:
    from carto_provider.testing.emulator import CartoEmulator

    emulator = CartoEmulator(args.host, args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"CARTO emulator listening on {emulator.url}", flush=True)
    print("Point Airflow and carto_provider at it with:", flush=True)
    print(f"export AIRFLOW_CONN_CARTO_DEFAULT={shlex.quote(emulator.airflow_connection_json())}", flush=True)
    print(f"export CARTO_AUTH_URL={emulator.url}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per action."""
    parser = argparse.ArgumentParser(prog="carto-provider", description="CARTO for Apache Airflow.")
    sub = parser.add_subparsers(dest="command", required=True)
    emulator = sub.add_parser("emulator", help="run the offline CARTO emulator")
    emulator.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    emulator.add_argument("--port", type=int, default=8808, help="port (0 picks a free one)")
    emulator.set_defaults(func=_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carto-provider`` command."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
