"""The interactive login (``CartoAuth.from_oauth``) against the emulator, headless: a test browser loads
the authorize page and follows its redirect to the loopback callback over real HTTP."""

from __future__ import annotations

import dataclasses
import re
import socket
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.login._loopback import FAILURE_PAGE, NOT_FOUND_PAGE, SUCCESS_PAGE, LoopbackListener
from carto_provider.auth.login._pkce import challenge_of, new_state, new_verifier, state_matches
from carto_provider.auth.login.flow import LoginUI, code_from_paste
from carto_provider.auth.login.oauth import PASTE_REDIRECT_URI, LoginToken, OAuthClient, login_cache
from carto_provider.auth.settings import CARTO_PUBLIC_CLIENT_ID
from carto_provider.auth.tokens import unverified_claims
from carto_provider.errors import CredentialsError, LoginRequiredError
from carto_provider.testing.browser import HeadlessBrowser, authorize_redirect
from carto_provider.testing.routes.oauth import oauth_emulation

#: Port 0: the listener takes a free port (the emulator, like RFC 8252, accepts any loopback port).
FREE_PORT_REDIRECT = "http://localhost:0/callback/"


@pytest.fixture(autouse=True)
def interactive_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier in-process DAG runs leave Airflow's task variables in the environment."""
    monkeypatch.delenv("AIRFLOW_CTX_TASK_ID", raising=False)


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "carto-auth" / "token_oauth.json"


def never(*args: object) -> bool:
    raise AssertionError("the login must not prompt here")


def quiet_ui(open_url=None, **kwargs) -> LoginUI:
    kwargs.setdefault("show", lambda text: None)
    kwargs.setdefault("read_input", never)
    kwargs.setdefault("timeout", 15)
    return LoginUI(open_url=open_url or HeadlessBrowser(), **kwargs)


def from_oauth(carto, cache_file: Path, ui: LoginUI | None = None, **kwargs) -> CartoAuth:
    kwargs.setdefault("redirect_uri", FREE_PORT_REDIRECT)
    return CartoAuth.from_oauth(
        cache_filepath=cache_file, auth_url=carto.url, login_ui=ui or quiet_ui(), **kwargs
    )


def cached_login(carto, cache_file: Path, org: str | None = None) -> LoginToken | None:
    token = login_cache(cache_file).peek(OAuthClient.resolve(auth_url=carto.url, org=org).cache_key)
    assert token is None or isinstance(token, LoginToken)
    return token


def authorize_queries(carto) -> list[dict[str, str]]:
    return oauth_emulation(carto.state).authorize_requests


# ---------------------------------------------------------------------------------------- PKCE, state


def test_pkce_follows_rfc7636() -> None:
    # RFC 7636 appendix B
    assert (
        challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    verifiers = {new_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    assert all(43 <= len(v) <= 128 and re.fullmatch(r"[A-Za-z0-9_-]+", v) for v in verifiers)


def test_state_check_rejects_missing_and_different_values() -> None:
    state = new_state()
    assert state_matches(state, state)
    assert not state_matches(state, None)
    assert not state_matches(state, "")
    assert not state_matches(state, state[:-1] + ("A" if state[-1] != "A" else "B"))
    assert not state_matches(state, "é" * 10)  # non-ASCII input compares without raising


# ---------------------------------------------------------------------------------------- browser mode


def test_browser_login_caches_a_working_token(carto_emulator, cache_file: Path) -> None:
    browser = HeadlessBrowser()
    auth = from_oauth(carto_emulator, cache_file, quiet_ui(browser))

    assert auth.get_api_base_url() == carto_emulator.url  # discovered
    assert auth.request("GET", "/v3/connections").status_code == 200
    assert browser.pages == [(200, SUCCESS_PAGE.decode())]
    (query,) = authorize_queries(carto_emulator)
    assert query["client_id"] == CARTO_PUBLIC_CLIENT_ID
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["audience"] == "carto-cloud-native-api"
    assert len(query["state"]) >= 43
    assert "organization" not in query
    assert re.fullmatch(r"http://localhost:\d+/callback/", query["redirect_uri"])
    assert carto_emulator.events("oauth_token") == 1
    assert carto_emulator.calls("GET /accounts") == 1 and carto_emulator.calls("GET /config.yaml") == 1

    port = urlsplit(query["redirect_uri"]).port
    with pytest.raises(ConnectionRefusedError):  # the listener stopped after the callback
        socket.create_connection(("127.0.0.1", port), timeout=5)

    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_file.parent.stat().st_mode) == 0o700
    login = cached_login(carto_emulator, cache_file)
    assert login is not None and login.value == auth.get_access_token()
    assert login.login is not None
    assert (login.login.api_base_url, login.login.user) == (carto_emulator.url, "analyst@example.com")


def test_a_cached_login_is_reused_without_any_prompt(carto_emulator, cache_file: Path) -> None:
    first = from_oauth(carto_emulator, cache_file)
    again = from_oauth(carto_emulator, cache_file, LoginUI(open_url=never, show=never, read_input=never))
    assert again.get_access_token() == first.get_access_token()
    assert again.get_api_base_url() == carto_emulator.url
    assert carto_emulator.calls("GET /authorize") == 1
    assert carto_emulator.calls("POST /oauth/token") == 1


def test_other_paths_do_not_end_the_wait(carto_emulator, cache_file: Path) -> None:
    browser = HeadlessBrowser(visit_first=["/favicon.ico", "/callback/"])  # the second has no code
    from_oauth(carto_emulator, cache_file, quiet_ui(browser))
    not_found = (404, NOT_FOUND_PAGE.decode())
    assert browser.pages == [not_found, not_found, (200, SUCCESS_PAGE.decode())]
    assert cached_login(carto_emulator, cache_file) is not None


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda location: re.sub(r"state=[^&]+", "state=forged", location), id="forged-state"),
        pytest.param(lambda location: re.sub(r"[?&]state=[^&]+", "", location), id="missing-state"),
    ],
)
def test_a_redirect_without_this_logins_state_exchanges_nothing(carto_emulator, cache_file, tamper) -> None:
    # Since issue 12 such a redirect is answered and ignored (the login keeps waiting for its own).
    browser = HeadlessBrowser(tamper=tamper)
    with pytest.raises(CredentialsError, match="without this login's state were ignored"):
        from_oauth(carto_emulator, cache_file, quiet_ui(browser, timeout=2))
    assert browser.pages == [(400, FAILURE_PAGE.decode())]
    assert carto_emulator.calls("POST /oauth/token") == 0
    assert cached_login(carto_emulator, cache_file) is None


def test_denied_consent_is_reported(carto_emulator, cache_file: Path) -> None:
    oauth_emulation(carto_emulator.state).deny = 1
    with pytest.raises(CredentialsError, match="access_denied: User did not authorize") as raised:
        from_oauth(carto_emulator, cache_file)
    assert raised.value.error == "access_denied"
    assert carto_emulator.calls("POST /oauth/token") == 0


def test_no_redirect_within_the_timeout_stops_the_login(carto_emulator, cache_file: Path) -> None:
    opened: list[str] = []
    ui = quiet_ui(open_url=lambda url: opened.append(url) or True, timeout=1)  # a browser that never returns
    with pytest.raises(CredentialsError, match=r"No login reached http://localhost:\d+/callback/ within 1 s"):
        from_oauth(carto_emulator, cache_file, ui)
    assert len(opened) == 1
    assert carto_emulator.calls("POST /oauth/token") == 0
    port = urlsplit(parse_qs(urlsplit(opened[0]).query)["redirect_uri"][0]).port
    with socket.create_server(("127.0.0.1", port)):  # the listener released its port
        pass


def test_a_taken_port_fails_at_once_with_a_clear_error(carto_emulator, cache_file: Path) -> None:
    opened: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        with pytest.raises(
            CredentialsError, match=f"Port {port} on 127.0.0.1 is already in use.*--no-browser"
        ):
            from_oauth(
                carto_emulator,
                cache_file,
                quiet_ui(open_url=lambda url: opened.append(url) or True),
                redirect_uri=f"http://localhost:{port}/callback/",
            )
    assert opened == []
    assert carto_emulator.calls("*") == 0


@pytest.mark.parametrize(
    ("redirect", "addresses"),
    [
        ("http://localhost:0/callback/", {"127.0.0.1", "::1"}),
        ("http://127.0.0.1:0/callback/", {"127.0.0.1"}),
    ],
)
def test_the_listener_binds_loopback_addresses_only(redirect: str, addresses: set[str]) -> None:
    with LoopbackListener(redirect, lambda params: True) as listener:
        bound = listener.bound_addresses
        assert {address for address, _ in bound} <= addresses
        assert "127.0.0.1" in {address for address, _ in bound}
        assert len({port for _, port in bound}) == 1 and listener.redirect_uri.endswith(
            f":{bound[0][1]}/callback/"
        )


def test_a_non_loopback_redirect_is_refused(carto_emulator, cache_file: Path) -> None:
    with pytest.raises(CredentialsError, match="not an http:// URL on localhost"):
        from_oauth(carto_emulator, cache_file, redirect_uri="https://example.com/callback/")
    assert carto_emulator.calls("*") == 0


# ---------------------------------------------------------------------------------------- paste mode


def paste_ui(answer, shown: list[str] | None = None) -> LoginUI:
    """A user who opens the printed address elsewhere and pastes ``answer(redirect_location)``."""
    lines = shown if shown is not None else []

    def read_input(prompt: str) -> str:
        url = re.search(r"http://\S+/authorize\?\S+", lines[-1])
        assert url, lines
        return answer(authorize_redirect(url.group(0)))

    return LoginUI(open_url=never, show=lines.append, read_input=read_input, timeout=15)


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


@pytest.mark.parametrize("answer", [lambda loc: loc, code_of], ids=["full-address", "bare-code"])
def test_paste_mode(carto_emulator, cache_file: Path, answer) -> None:
    auth = from_oauth(carto_emulator, cache_file, paste_ui(answer), open_browser=False)
    assert auth.request("GET", "/v3/connections").status_code == 200
    (query,) = authorize_queries(carto_emulator)
    assert query["redirect_uri"] == PASTE_REDIRECT_URI
    assert carto_emulator.events("oauth_token") == 1
    assert cached_login(carto_emulator, cache_file) is not None


def test_paste_mode_checks_the_state_of_a_pasted_address(carto_emulator, cache_file: Path) -> None:
    forged = paste_ui(lambda loc: re.sub(r"state=[^&]+", "state=forged", loc))
    with pytest.raises(CredentialsError, match="does not carry this login's state"):
        from_oauth(carto_emulator, cache_file, forged, open_browser=False)
    assert carto_emulator.calls("POST /oauth/token") == 0


def test_paste_mode_is_used_when_no_browser_can_be_opened(carto_emulator, cache_file: Path) -> None:
    shown: list[str] = []
    ui = dataclasses.replace(paste_ui(lambda loc: loc, shown), open_url=lambda url: False)
    from_oauth(carto_emulator, cache_file, ui)
    assert any("No web browser can be opened here" in line for line in shown)
    (query,) = authorize_queries(carto_emulator)  # the browser's address was never loaded
    assert query["redirect_uri"] == PASTE_REDIRECT_URI
    assert cached_login(carto_emulator, cache_file) is not None


def test_paste_mode_without_input_fails_clearly(carto_emulator, cache_file: Path) -> None:
    def closed_stdin(prompt: str) -> str:
        raise EOFError

    ui = LoginUI(open_url=never, show=lambda text: None, read_input=closed_stdin)
    with pytest.raises(CredentialsError, match="no input to read"):
        from_oauth(carto_emulator, cache_file, ui, open_browser=False)


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("https://app.carto.com/auth/token?code=abc123&state=S", "abc123"),
        ("?code=abc123&state=S", "abc123"),
        ("code=abc123&state=S", "abc123"),
        ("  abc123  ", "abc123"),
    ],
)
def test_pasted_text_forms(pasted: str, expected: str) -> None:
    assert code_from_paste(pasted, "S") == expected


@pytest.mark.parametrize("pasted", ["", "two words", "https://app.carto.com/auth/token?code=abc123"])
def test_unusable_pasted_text_is_refused(pasted: str) -> None:
    with pytest.raises(CredentialsError):
        code_from_paste(pasted, "S")


# ---------------------------------------------------------------------------------------- options


def test_sso_organization_is_sent_and_keys_its_own_login(carto_emulator, cache_file: Path) -> None:
    auth = from_oauth(carto_emulator, cache_file, org="org_1234")
    (query,) = authorize_queries(carto_emulator)
    assert query["organization"] == "org_1234"
    assert unverified_claims(auth.get_access_token())["org_id"] == "org_1234"
    sso = cached_login(carto_emulator, cache_file, org="org_1234")
    assert sso is not None and sso.login is not None and sso.login.org == "org_1234"
    assert cached_login(carto_emulator, cache_file) is None  # a login without org is another entry


def test_an_organization_carto_refuses_is_reported(carto_emulator, cache_file: Path) -> None:
    with pytest.raises(CredentialsError, match="invalid_request: parameter organization is invalid"):
        from_oauth(carto_emulator, cache_file, org="not-an-org")
    assert carto_emulator.calls("POST /oauth/token") == 0


def test_an_explicit_api_base_url_skips_discovery(carto_emulator, cache_file: Path) -> None:
    auth = from_oauth(carto_emulator, cache_file, api_base_url=carto_emulator.url + "/")
    assert auth.get_api_base_url() == carto_emulator.url
    assert carto_emulator.calls("GET /accounts") == 0
    login = cached_login(carto_emulator, cache_file)
    assert login is not None and login.login is not None
    assert login.login.user == "analyst@example.com"  # from the token's claims


def test_use_cache_false_writes_nothing(carto_emulator, cache_file: Path) -> None:
    auth = from_oauth(carto_emulator, cache_file, use_cache=False)
    assert auth.request("GET", "/v3/connections").status_code == 200
    assert not cache_file.exists()


# ---------------------------------------------------------------------------------------- expiry


def expire_soon(carto, cache_file: Path) -> None:
    """Make the cached login expire in one minute (inside the 5-minute margin)."""
    cache = login_cache(cache_file)
    key = OAuthClient.resolve(auth_url=carto.url).cache_key
    token = cache.peek(key)
    assert token is not None
    now = time.time()
    cache.store(key, dataclasses.replace(token, obtained_at=now - 86340, expires_at=now + 60))


def test_an_expiring_login_is_renewed_interactively(carto_emulator, cache_file: Path) -> None:
    from_oauth(carto_emulator, cache_file)
    expire_soon(carto_emulator, cache_file)
    browser = HeadlessBrowser()
    auth = from_oauth(carto_emulator, cache_file, quiet_ui(browser))
    assert len(browser.opened) == 1
    assert carto_emulator.events("oauth_token") == 2
    assert auth.request("GET", "/v3/connections").status_code == 200


def test_no_interactive_login_inside_an_airflow_task(carto_emulator, cache_file, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "some_task")
    with pytest.raises(LoginRequiredError, match=r"this is an Airflow task.*`carto-provider login"):
        from_oauth(carto_emulator, cache_file, LoginUI(open_url=never, show=never, read_input=never))
    assert carto_emulator.calls("*") == 0


def test_forged_callbacks_and_silent_connections_do_not_stop_the_real_login(
    carto_emulator, cache_file
) -> None:
    """A forged callback (wrong or missing state) is answered 400 and ignored; idle connections are
    served concurrently, so the real redirect still completes within the login's timeout."""
    import urllib.error
    import urllib.request

    answers: list[int] = []
    idle: list[socket.socket] = []
    browser = HeadlessBrowser()

    def open_url(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        port = urlsplit(redirect).port
        idle.extend(socket.create_connection(("127.0.0.1", port)) for _ in range(3))  # never speak
        for query in ("code=stolen&state=forged", "code=stolen", "error=access_denied"):
            try:
                urllib.request.urlopen(f"{redirect}?{query}", timeout=5)
            except urllib.error.HTTPError as exc:
                answers.append(exc.code)
        return browser(url)

    try:
        auth = from_oauth(carto_emulator, cache_file, quiet_ui(open_url, timeout=4))
    finally:
        for sock in idle:
            sock.close()
    assert answers == [400, 400, 400]
    assert auth.get_access_token()
    assert browser.pages == [(200, SUCCESS_PAGE.decode())]
    assert carto_emulator.calls("POST /oauth/token") == 1  # only the real code was exchanged
