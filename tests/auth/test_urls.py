"""URL validation at configuration time: every rule refuses with a message naming the field and the rule."""

from __future__ import annotations

import json

import pytest

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.urls import check_url
from carto_provider.errors import CredentialsConfigError, CredentialsError


@pytest.mark.parametrize(
    "url, rule",
    [
        ("javascript:alert(1)", "is not an http(s) URL (scheme 'javascript')"),
        ("data:text/html,hi", "is not an http(s) URL"),
        ("ftp://a.example", "is not an http(s) URL"),
        ("https://host:notaport", "invalid port"),
        ("https://host:0", "invalid port"),
        ("https://host:65536", "invalid port"),
        ("https://host:-1", "invalid port"),
        ("https://ho st.example", "whitespace or control characters"),
        ("https://host.example\r\nX-Injected: 1", "whitespace or control characters"),
        ("https://host.example\n", "whitespace or control characters"),
        (" https://host.example", "whitespace or control characters"),
        ("https://host\x00.example", "whitespace or control characters"),
        ("https://user:pw@host.example", "must not carry user info"),
        ("https://token@host.example", "must not carry user info"),
        ("https://-bad-.example", "invalid host"),
        ("https://a..b", "invalid host"),
        ("https://", "invalid host"),
        ("https://[::1", "invalid host"),
        ("https://[not-ipv6]", "invalid host"),
        ("https://ex%41mple.com", "invalid host"),
        ("https://host.example/?q=1", "must not carry a query"),
        ("https://host.example/#frag", "must not carry a query (?...) or fragment"),
        ("http://carto.example.com", "uses http:// for the non-loopback host"),
    ],
)
def test_bad_urls_are_refused_naming_the_field_and_the_rule(url, rule):
    with pytest.raises(CredentialsConfigError) as raised:
        check_url(url, what="API base URL")
    message = str(raised.value)
    assert message.startswith("The API base URL ") and rule in message
    assert "pw@" not in message and "token@" not in message
    assert "\n" not in message and "\r" not in message and "\x00" not in message


@pytest.mark.parametrize(
    "url, normalized",
    [
        ("gcp-us-east1.api.carto.com", "https://gcp-us-east1.api.carto.com"),
        ("HTTPS://Gcp-Us-East1.api.carto.com/", "https://Gcp-Us-East1.api.carto.com"),
        ("https://host:8443/api/", "https://host:8443/api"),
        ("http://127.0.0.1:8808", "http://127.0.0.1:8808"),
        ("http://[::1]:8808/", "http://[::1]:8808"),
        ("http://localhost:65535", "http://localhost:65535"),
        ("carto_emulator:8808", "https://carto_emulator:8808"),
    ],
)
def test_good_urls_pass(url, normalized):
    assert check_url(url, what="API base URL") == normalized


def test_plain_http_for_a_named_host_needs_it_listed():
    assert check_url("http://emu:8808", what="x", insecure_http_hosts={"EMU"}) == "http://emu:8808"
    with pytest.raises(CredentialsConfigError, match="uses http://"):
        check_url("http://emu.example:8808", what="x", insecure_http_hosts={"emu"})


def test_a_bad_url_in_a_credentials_file_names_the_file_and_the_rule(tmp_path):
    path = tmp_path / "carto_credentials.json"
    path.write_text(
        json.dumps({"api_base_url": "javascript:alert(1)", "client_id": "i", "client_secret": "s"})
    )
    with pytest.raises(CredentialsError) as raised:
        CartoAuth.from_m2m(path)
    assert str(path) in str(raised.value) and "is not an http(s) URL" in str(raised.value)


def test_bad_auth_and_redirect_urls_are_refused_before_any_request():
    from carto_provider.auth.login.oauth import OAuthClient

    with pytest.raises(CredentialsConfigError, match=r"The redirect URI .* must not carry"):
        OAuthClient.resolve(auth_url="https://auth.example", redirect_uri="http://localhost:1/cb#x")
    with pytest.raises(CredentialsConfigError, match=r"auth URL .*invalid port"):
        OAuthClient.resolve(auth_url="https://auth.example:99999")
