"""The interactive CARTO login: authorization code + PKCE, in the browser or by pasting an address.

* Browser mode: listen on the loopback redirect (:mod:`.loopback`), open the authorize page with
  :mod:`webbrowser` (so ``$BROWSER`` chooses the browser), wait for one redirect (timeout), check its
  ``state``, exchange the code.
* Paste mode (``open_browser=False``, or no browser can be opened): print the authorize page's address
  with CARTO's copy-and-paste redirect, then read back the address the user lands on (its ``state`` is
  checked) or the bare code CARTO's page shows.

Then, unless an API base URL was given, find it (:mod:`.discovery`). Used by ``carto-provider login``
and :meth:`CartoAuth.from_oauth`; never by Airflow tasks, and refused inside one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT
from carto_provider.auth.cache.policy import DEFAULT_LOCK_TIMEOUT, TokenCache
from carto_provider.auth.login._loopback import LoopbackListener
from carto_provider.auth.login._pkce import challenge_of, new_state, new_verifier, state_matches
from carto_provider.auth.login.discovery import discover_account
from carto_provider.auth.login.oauth import (
    LoginInfo,
    LoginToken,
    OAuthClient,
    default_login_cache_path,
    exchange_code,
    login_cache,
    login_command,
)
from carto_provider.auth.settings import AuthSettings
from carto_provider.auth.tokens import AccessToken, unverified_claims
from carto_provider.errors import CredentialsError, LoginRequiredError

log = logging.getLogger(__name__)

#: Seconds the browser login waits for the redirect.
DEFAULT_LOGIN_TIMEOUT = 300.0
#: Set by Airflow in every task's environment. Read when a login is about to prompt, not with the
#: settings: a ``CartoAuth`` built while a DAG file is parsed exists before Airflow sets it.
AIRFLOW_TASK_ENV = "AIRFLOW_CTX_TASK_ID"
#: The keyword arguments of ``from_oauth`` that choose the OAuth client (see :meth:`OAuthClient.resolve`).
CLIENT_OPTIONS = ("auth_url", "client_id", "redirect_uri", "paste_redirect_uri")
_CODE = re.compile(r"[A-Za-z0-9._~+/-]{4,2048}")


def open_in_browser(url: str) -> bool:
    """Open ``url`` with :mod:`webbrowser`; False when no browser can be opened here (as in Colab or
    Databricks, where it would open on the server). Asked of the running process when a login
    starts, like ``$BROWSER`` inside :mod:`webbrowser`: the user interface's edge, not a setting."""
    if "google.colab" in sys.modules or os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return False
    try:
        return bool(webbrowser.open(url, new=1))
    except webbrowser.Error:
        return False


def _show(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class LoginUI:
    """How a login talks to the user: open a URL in a browser, show text, read a pasted line, and how
    long to wait for the browser. Tests and notebooks may replace any of them."""

    open_url: Callable[[str], bool] = open_in_browser
    show: Callable[[str], None] = _show
    read_input: Callable[[str], str] = input
    timeout: float = DEFAULT_LOGIN_TIMEOUT


def _printable(text: str | None, limit: int = 200) -> str:
    return "".join(ch for ch in (text or "") if ch.isprintable())[:limit]


def code_from_callback(params: Mapping[str, str], state: str) -> str:
    """The authorization code of a redirect, after checking its ``state``; else a clear CredentialsError."""
    if params.get("error"):
        error, description = _printable(params["error"], 80), _printable(params.get("error_description"))
        raise CredentialsError(
            f"CARTO did not complete the login ({error}{': ' + description if description else ''}). "
            "Run the login again and approve it; for Single Sign-On, check the organization id (--org).",
            error=error,
            error_description=description or None,
        )
    if not state_matches(state, params.get("state")):
        raise CredentialsError(
            "The login's redirect does not carry this login's state (it is missing or different), so it "
            "may come from another login or a forged link; nothing was exchanged. Run the login again."
        )
    code = params.get("code")
    if not code:
        raise CredentialsError("The login's redirect carries no authorization code. Run the login again.")
    return code


def code_from_paste(text: str, state: str) -> str:
    """The code from a pasted redirect address (``state`` checked) or a bare code."""
    text = text.strip()
    if not text:
        raise CredentialsError("Nothing was pasted. Run the login again and paste the address or the code.")
    if "=" in text:  # the address, or just its query
        parts = urlsplit(text)
        query = parts.query or parts.fragment or text.lstrip("?#")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        return code_from_callback(params, state)
    if not _CODE.fullmatch(text):
        raise CredentialsError(
            "That is neither the address you were redirected to nor an access code. Run the login again."
        )
    return text


def _browser_code(client: OAuthClient, challenge: str, state: str, ui: LoginUI) -> tuple[str, str] | None:
    """(code, redirect URI) from the browser, or None when no browser could be opened."""
    outcome: dict[str, Any] = {}

    def on_callback(params: dict[str, str]) -> bool | None:
        if not state_matches(state, params.get("state")):
            log.warning("Ignored a login redirect without this login's state (forged or from another login)")
            return None
        try:
            outcome["code"] = code_from_callback(params, state)
        except CredentialsError as exc:
            outcome["error"] = exc
            return False
        return True

    with LoopbackListener(client.redirect_uri, on_callback) as listener:
        redirect_uri = listener.redirect_uri
        url = client.authorize_url(redirect_uri=redirect_uri, challenge=challenge, state=state)
        if not ui.open_url(url):
            return None
        ui.show(
            f"A browser was opened to log in to CARTO; if you do not see it, open:\n    {url}\n"
            f"Waiting up to {ui.timeout:.0f} s for the login to finish (Ctrl-C to stop)..."
        )
        if not listener.wait(ui.timeout):
            ignored = (
                f" ({listener.ignored} redirect(s) without this login's state were ignored)"
                if listener.ignored
                else ""
            )
            raise CredentialsError(
                f"No login reached {redirect_uri} within {ui.timeout:.0f} s{ignored}, so the login was "
                "stopped. Run it again and finish it in the browser; if the browser runs on another machine "
                "(SSH, container), log in with --no-browser (open_browser=False) instead."
            )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["code"], redirect_uri


def _pasted_code(client: OAuthClient, challenge: str, state: str, ui: LoginUI) -> tuple[str, str]:
    """(code, redirect URI) from what the user pastes."""
    redirect_uri = client.paste_redirect_uri
    url = client.authorize_url(redirect_uri=redirect_uri, challenge=challenge, state=state)
    ui.show(
        f"Open this address in a browser and log in to CARTO:\n    {url}\n"
        "Then paste here the address of the page you end up on (or the access code it shows)."
    )
    try:
        text = ui.read_input("Address or code: ")
    except EOFError:
        raise CredentialsError(
            "The login needs the address or code pasted here, but there is no input to read (stdin is "
            "closed). Run `carto-provider login` in a terminal."
        ) from None
    return code_from_paste(text, state), redirect_uri


def _login_info(
    token: AccessToken,
    client: OAuthClient,
    api_base_url: str | None,
    policy: CartoRetryPolicy,
    timeout: float | tuple[float, float],
) -> LoginInfo:
    claims = unverified_claims(token.value)
    subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
    email = next(
        (v for k, v in claims.items() if (k == "email" or k.endswith("/email")) and isinstance(v, str)), None
    )
    if api_base_url is None:
        account = discover_account(
            token.value, auth_url=client.auth_url, settings=client.settings, policy=policy, timeout=timeout
        )
        api_base_url, email = account.api_base_url, account.email or email
    return LoginInfo(api_base_url=api_base_url, user=email or subject, subject=subject, org=client.org)


def interactive_login(
    client: OAuthClient,
    *,
    api_base_url: str | None = None,
    open_browser: bool = True,
    ui: LoginUI | None = None,
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> LoginToken:
    """Log the user in and return the token with its :class:`LoginInfo` (not cached: the caller does)."""
    ui = ui or LoginUI()
    explicit = client.settings.check_base_url(api_base_url) if api_base_url else None
    started = time.monotonic()
    verifier, state = new_verifier(), new_state()
    got = _browser_code(client, challenge_of(verifier), state, ui) if open_browser else None
    if got is None:
        if open_browser:
            ui.show("No web browser can be opened here; log in with a browser elsewhere instead.")
        verifier, state = new_verifier(), new_state()
        got = _pasted_code(client, challenge_of(verifier), state, ui)
    code, redirect_uri = got
    token = exchange_code(
        client,
        code=code,
        verifier=verifier,
        redirect_uri=redirect_uri,
        policy=policy,
        timeout=timeout,
    )
    info = _login_info(token, client, explicit, policy, timeout)
    log.info(
        "Logged in to CARTO as %s (%s) in %.1f s; token fp=%s",
        info.user,
        info.api_base_url,
        time.monotonic() - started,
        token.fingerprint,
    )
    return LoginToken(token.value, token.expires_at, token.obtained_at, token.token_type, login=info)


def refuse_inside_airflow_task(client: OAuthClient) -> None:
    """Raise LoginRequiredError when running as an Airflow task, which must never prompt (asked at the
    moment of prompting: see :data:`AIRFLOW_TASK_ENV`)."""
    if os.environ.get(AIRFLOW_TASK_ENV):
        raise LoginRequiredError(
            f"A new {client.label} is needed, but this is an Airflow task, which never opens a browser or "
            f"waits for input. Run `{login_command(client)}` on this machine, then run the task again."
        )


def _login_of(
    cache: TokenCache, client: OAuthClient, explicit: str | None, log_in: Callable[[], LoginToken]
) -> LoginInfo | None:
    """The cached login's details; logs in now when none is cached, or when the entry has no details
    and no API base URL was given."""
    token = cache.get(client.cache_key, log_in)
    login = token.login if isinstance(token, LoginToken) else None
    if explicit is None and login is None:
        token = log_in()
        cache.store(client.cache_key, token)
        login = token.login
    return login


def oauth_parts(
    cache_filepath: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    open_browser: bool = True,
    api_base_url: str | None = None,
    org: str | None = None,
    *,
    given: AccessToken | None = None,
    login_ui: LoginUI | None = None,
    lock_timeout: float | None = None,
    retry_policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    settings: AuthSettings | None = None,
    **common: Any,
) -> dict[str, Any]:
    """The parts of an OAuth ``CartoAuth``: reuse the cached login (or ``given``, a token the
    caller already has), or log in now (and again whenever the login expires). ``auth_url``,
    ``client_id``, ``redirect_uri``, ``paste_redirect_uri`` in ``common`` and ``settings`` go to
    :meth:`OAuthClient.resolve`; the rest of ``common`` (``on_secret``...) to the ``CartoAuth``."""
    options = {name: common.pop(name) for name in CLIENT_OPTIONS if name in common}
    client = OAuthClient.resolve(org=org, settings=settings, **options)
    explicit = client.settings.check_base_url(api_base_url) if api_base_url else None
    path = (cache_filepath or default_login_cache_path()) if use_cache else None
    cache = login_cache(path, lock_timeout=lock_timeout or DEFAULT_LOCK_TIMEOUT)

    def log_in() -> LoginToken:
        refuse_inside_airflow_task(client)
        return interactive_login(
            client,
            api_base_url=explicit,
            open_browser=open_browser,
            ui=login_ui,
            policy=retry_policy,
            timeout=timeout,
        )

    login = _login_of(cache, client, explicit, log_in) if given is None else None
    return {
        "api_base_url": explicit or (login.api_base_url if login else None),
        "cache": cache,
        "cache_key": client.cache_key,
        "fetch_token": log_in,
        "retry_policy": retry_policy,
        "timeout": timeout,
        "settings": client.settings,
        **common,
    }
