"""The emulator's login endpoints hold clients to the rules: client, PKCE, redirect, single-use codes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from carto_provider.auth.login._pkce import challenge_of, new_verifier
from carto_provider.testing.routes.oauth import CARTO_PUBLIC_CLIENT_ID, redirect_allowed

REDIRECT = "http://localhost:10000/callback/"


def authorize(carto, verifier: str, **overrides: str | None) -> requests.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CARTO_PUBLIC_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "audience": "carto-cloud-native-api",
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        "state": "s1",
    }
    params.update(overrides)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return requests.get(f"{carto.url}/authorize?{query}", allow_redirects=False, timeout=10)


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def exchange(carto, issued_code: str, verifier: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": CARTO_PUBLIC_CLIENT_ID,
        "code": issued_code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
        "audience": "carto-cloud-native-api",
        **overrides,
    }
    return requests.post(f"{carto.url}/oauth/token", data=form, timeout=10)


def test_a_correct_exchange_gives_a_token_the_api_accepts(carto_emulator) -> None:
    verifier = new_verifier()
    params = redirect_params(authorize(carto_emulator, verifier))
    assert params["state"] == "s1"
    response = exchange(carto_emulator, params["code"], verifier)
    assert response.status_code == 200
    token = response.json()["access_token"]
    api = requests.get(
        f"{carto_emulator.url}/v3/connections", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert api.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "https://evil.example/callback/"}, "invalid_request"),
        ({"redirect_uri": "http://localhost:10000/elsewhere/"}, "invalid_request"),
    ],
)
def test_unknown_clients_and_redirects_get_an_error_page_not_a_redirect(carto_emulator, overrides, error):
    response = authorize(carto_emulator, new_verifier(), **overrides)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"] == error


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "too-short"},
        {"response_type": "token"},
        {"audience": "another-api"},
    ],
)
def test_bad_pkce_or_request_parameters_are_redirected_back_as_errors(carto_emulator, overrides) -> None:
    params = redirect_params(authorize(carto_emulator, new_verifier(), **overrides))
    assert "code" not in params
    assert params["error"] in ("invalid_request", "unsupported_response_type", "access_denied")
    assert params["state"] == "s1"


def test_loopback_redirects_may_use_any_port_but_nothing_else_changes() -> None:
    registered = (REDIRECT, "https://app.carto.com/auth/token")
    assert redirect_allowed(registered, "http://127.0.0.1:54321/callback/")
    assert redirect_allowed(registered, "http://localhost:1/callback/")
    assert not redirect_allowed(registered, "http://localhost:1/other/")
    assert not redirect_allowed(registered, "https://localhost:10000/callback/")
    assert not redirect_allowed(registered, "https://app.carto.com/auth/token/x")


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_verifier": "x" * 43}, "Failed to verify code verifier"),
        ({"code_verifier": "short"}, "Failed to verify code verifier"),
        ({"redirect_uri": "https://app.carto.com/auth/token"}, "Redirect URI mismatch"),
        ({"code": "made-up"}, "Invalid authorization code"),
    ],
)
def test_the_code_exchange_checks_code_verifier_and_redirect(carto_emulator, overrides, description) -> None:
    verifier = new_verifier()
    params = redirect_params(authorize(carto_emulator, verifier))
    response = exchange(carto_emulator, params["code"], verifier, **overrides)
    assert response.status_code == 403
    assert response.json() == {"error": "invalid_grant", "error_description": description}
    assert carto_emulator.events("oauth_token") == 0


def test_codes_are_single_use(carto_emulator) -> None:
    verifier = new_verifier()
    code = redirect_params(authorize(carto_emulator, verifier))["code"]
    assert exchange(carto_emulator, code, verifier).status_code == 200
    assert exchange(carto_emulator, code, verifier).json()["error"] == "invalid_grant"


def test_discovery_endpoints(carto_emulator) -> None:
    verifier = new_verifier()
    code = redirect_params(authorize(carto_emulator, verifier))["code"]
    token = exchange(carto_emulator, code, verifier).json()["access_token"]
    assert requests.get(f"{carto_emulator.url}/accounts", timeout=10).status_code == 401
    account = requests.get(
        f"{carto_emulator.url}/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert account["tenant_domain"] == carto_emulator.url.split("://", 1)[1]
    config = requests.get(f"http://{account['tenant_domain']}/config.yaml", timeout=10).text
    assert f"baseUrl: {carto_emulator.url}" in config
