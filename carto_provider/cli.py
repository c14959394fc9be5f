"""``carto-provider``: the command line of airflow-provider-carto.

* ``carto-provider emulator [--host H] [--port N]``: run the CARTO emulator and print the settings
  (``AIRFLOW_CONN_CARTO_DEFAULT``, ``CARTO_AUTH_URL``) that point Airflow and ``CartoAuth`` at it.
* ``carto-provider login [--org ORG] [--api-base-url URL] [--no-browser]``: log in as yourself (OAuth
  + PKCE) and cache the login for ``CartoAuth.from_oauth`` and connections with ``auth_type: oauth``.
* ``carto-provider status``: who is logged in, to which API base URL, until when (never the token).
* ``carto-provider logout``: forget the cached login.
* ``carto-provider demo [--dags-folder DIR] [DAG_ID ...]``: run the example DAGs installed with the
  package (``carto_provider/example_dags``) with a throw-away Airflow (SQLite) against the emulator.

``emulator`` and ``demo`` need the ``emulator`` extra and say so at once when it is missing.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carto_provider.auth.cache.policy import TokenCache
    from carto_provider.auth.login.oauth import OAuthClient
    from carto_provider.auth.tokens import AccessToken

Command = Callable[[argparse.Namespace], int]


def _emulator(args: argparse.Namespace) -> int:
    from carto_provider.testing.emulator import CartoEmulator  # after _needs_emulator's check

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


def _login_target(args: argparse.Namespace) -> tuple[OAuthClient, TokenCache, Path]:
    """The OAuth client, cache and cache file the login options designate (the options over the
    environment's settings, resolved here once)."""
    from carto_provider.auth.login.oauth import OAuthClient, default_login_cache_path, login_cache
    from carto_provider.auth.settings import AuthSettings

    client = OAuthClient.resolve(
        auth_url=args.auth_url,
        client_id=args.client_id,
        org=args.org,
        redirect_uri=getattr(args, "redirect_uri", None),
        paste_redirect_uri=getattr(args, "paste_redirect_uri", None),
        settings=AuthSettings.from_environment(),
    )
    path = default_login_cache_path(args.token_cache_dir)
    return client, login_cache(path), path


def _describe_login(token: AccessToken, client: OAuthClient, path: Path) -> str:
    from carto_provider.api.untrusted import sanitize
    from carto_provider.auth.login.oauth import LoginToken, expiry_text

    login = token.login if isinstance(token, LoginToken) else None
    user = sanitize(login.user, limit=200) if login and login.user else None
    base_url = sanitize(login.api_base_url, limit=200) if login and login.api_base_url else None
    left = max(0, int(token.expires_at - time.time()))
    return "\n".join(
        [
            f"Logged in to CARTO as {user or 'an unknown user'}",
            f"  API base URL: {base_url or 'unknown'}",
            f"  Login:        {client.label}",
            f"  Expires:      {expiry_text(token.expires_at)} (in {left // 3600} h {left % 3600 // 60} min)",
            f"  Token:        fp={token.fingerprint} (a fingerprint; the token itself is never shown)",
            f"  Cache:        {path}",
        ]
    )


def _login(args: argparse.Namespace) -> int:
    from carto_provider.auth.login.flow import LoginUI, interactive_login

    client, cache, path = _login_target(args)
    token = interactive_login(
        client,
        api_base_url=args.api_base_url,
        open_browser=not args.no_browser,
        ui=LoginUI(timeout=args.timeout),
    )
    cache.store(client.cache_key, token)
    print(_describe_login(token, client, path), flush=True)
    print("Connections with auth_type 'oauth' and CartoAuth.from_oauth() now use this login.", flush=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    from carto_provider.auth.login.oauth import login_command

    client, cache, path = _login_target(args)
    token = cache.peek(client.cache_key)
    if token is None or not token.usable(time.time()):
        print(
            f"Not logged in: no unexpired {client.label} is cached in {path}. "
            f"Run `{login_command(client, args.token_cache_dir)}`."
        )
        return 1
    print(_describe_login(token, client, path))
    return 0


def _logout(args: argparse.Namespace) -> int:
    client, cache, path = _login_target(args)
    if cache.clear(client.cache_key):
        print(f"Logged out: removed the {client.label} from {path}.")
    else:
        print(f"Nothing to do: no {client.label} is cached in {path}.")
    return 0


def _reporting_errors(command: Command) -> Command:
    """Print CARTO errors as one clear line on stderr (exit 1) instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        from carto_provider.errors import CartoError

        try:
            return command(args)
        except CartoError as exc:
            print(f"carto-provider {args.command}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"carto-provider {args.command}: stopped.", file=sys.stderr)
            return 130

    return run


def _add_login_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``login``, ``status`` and ``logout``, which share the options that name a login."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--org", help="your CARTO Single Sign-On organization id (org_...)")
    common.add_argument("--auth-url", help="CARTO's OAuth server (default: $CARTO_AUTH_URL or CARTO's)")
    common.add_argument(
        "--client-id", help="OAuth client (default: $CARTO_OAUTH_CLIENT_ID or CARTO's public one)"
    )
    common.add_argument(
        "--token-cache-dir", help="where the login is cached (default ~/.carto-provider, like the extra)"
    )
    login = sub.add_parser("login", parents=[common], help="log in to CARTO as yourself, for local DAG runs")
    login.add_argument("--api-base-url", help="your CARTO API base URL (default: found from your account)")
    login.add_argument("--no-browser", action="store_true", help="print the login address and paste back")
    login.add_argument("--redirect-uri", help="loopback redirect (default http://localhost:10000/callback/)")
    login.add_argument("--paste-redirect-uri", help="redirect of --no-browser (default CARTO's token page)")
    login.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the browser")
    login.set_defaults(func=_reporting_errors(_login))
    status = sub.add_parser("status", parents=[common], help="show the cached CARTO login (never the token)")
    status.set_defaults(func=_reporting_errors(_status))
    logout = sub.add_parser("logout", parents=[common], help="forget the cached CARTO login")
    logout.set_defaults(func=_reporting_errors(_logout))


def _needs_emulator(command: Command, what: str) -> Command:
    """``command``, stopping at once with the extra to install when the emulator extra is missing."""

    def run(args: argparse.Namespace) -> int:
        from carto_provider.testing.extra import MissingExtraError, require_emulator_extra

        try:
            require_emulator_extra(what)
        except MissingExtraError as exc:
            print(f"carto-provider: {exc}", file=sys.stderr)
            return 2
        return command(args)

    return run


def _demo(args: argparse.Namespace) -> int:
    from carto_provider.testing.demo import DEFAULT_DAGS, EXAMPLE_DAGS, run_demo

    report = run_demo(
        args.dags_folder or EXAMPLE_DAGS,
        args.dag_ids or DEFAULT_DAGS,
        on_progress=lambda m: print(m, flush=True),
    )
    if report.migrate_failed:
        print(f"airflow db migrate failed; see {report.log}")
        return 1
    print("Requests the emulator served: " + ", ".join(f"{k} x{v}" for k, v in report.requests.items()))
    if not report.ok or args.keep:
        print(f"Full Airflow output: {report.log}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one sub-command per action."""
    parser = argparse.ArgumentParser(prog="carto-provider", description="CARTO for Apache Airflow.")
    sub = parser.add_subparsers(dest="command", required=True)
    emulator = sub.add_parser("emulator", help="run the offline CARTO emulator")
    emulator.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (loopback by default; 0.0.0.0 in containers)",
    )
    emulator.add_argument("--port", type=int, default=8808, help="port (0 picks a free one)")
    emulator.set_defaults(func=_needs_emulator(_emulator, "carto-provider emulator"))
    _add_login_commands(sub)
    demo = sub.add_parser("demo", help="run example DAGs against the emulator with a throw-away Airflow")
    demo.add_argument(
        "--dags-folder",
        type=Path,
        default=None,
        help="folder of the DAG files (default: the examples installed with the package)",
    )
    demo.add_argument("--keep", action="store_true", help="print where Airflow's full output is kept")
    demo.add_argument("dag_ids", nargs="*", help="DAG ids to run (default: the bundled examples)")
    demo.set_defaults(func=_needs_emulator(_demo, "carto-provider demo"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carto-provider`` command."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
