"""carto-auth 0.2.0's public contract, exactly, run against ``carto_provider.auth.CartoAuth``.

The documented examples (carto-auth's README and CARTO's "CARTO + Python" and pydeck-carto
authentication pages) run here against the emulator; signatures, defaults and the exceptions
``carto-auth`` raises are checked; and this package never touches carto-auth's own files.
"""

from __future__ import annotations

import gc
import inspect
import json
import time
import weakref
from pathlib import Path

import pytest

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.errors import CredentialsError, CredentialsFileError
from tests.helpers import write_credentials

#: carto-auth 0.2.0's signatures (carto_auth/auth.py), parameter names and defaults in order.
CONTRACT = {
    "__init__": [
        ("self", inspect.Parameter.empty),
        ("mode", inspect.Parameter.empty),
        ("api_base_url", None),
        ("access_token", None),
        ("expiration", None),
        ("client_id", None),
        ("client_secret", None),
        ("cache_filepath", None),
        ("use_cache", True),
        ("open_browser", True),
        ("org", None),
    ],
    "from_oauth": [
        ("cache_filepath", None),
        ("use_cache", True),
        ("open_browser", True),
        ("api_base_url", None),
        ("org", None),
    ],
    "from_m2m": [("filepath", inspect.Parameter.empty), ("cache_filepath", None), ("use_cache", True)],
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_signatures_and_defaults_are_carto_auths(name):
    params = [
        (p.name, p.default)
        for p in inspect.signature(getattr(CartoAuth, name)).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert params[: len(CONTRACT[name])] == CONTRACT[name]
    if name == "__init__":
        assert params == CONTRACT[name]  # exactly: no extra parameter


@pytest.mark.parametrize("name", ["get_access_token", "get_api_base_url", "get_carto_dw_credentials"])
def test_methods_exist_and_take_no_required_argument(name):
    params = list(inspect.signature(getattr(CartoAuth, name)).parameters.values())[1:]
    assert all(p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD for p in params)


# --------------------------------------------------------------------------- documented examples


def test_documented_m2m_example(carto_emulator, tmp_path, monkeypatch):
    """``carto_auth = CartoAuth.from_m2m("./carto-credentials.json")`` then a token and DW credentials."""
    monkeypatch.chdir(tmp_path)
    write_credentials(tmp_path / "carto-credentials.json", carto_emulator)
    carto_auth = CartoAuth.from_m2m("./carto-credentials.json")
    assert carto_emulator.token_requests() == 1  # a token before from_m2m returns
    access_token = carto_auth.get_access_token()
    assert access_token.count(".") == 2
    assert carto_auth.get_api_base_url() == carto_emulator.url
    project, dw_token = carto_auth.get_carto_dw_credentials()
    assert project and dw_token
    assert carto_emulator.token_requests() == 1


def test_pydeck_carto_layer_credentials(carto_emulator, tmp_path):
    """pydeck-carto 0.1.0's ``get_layer_credentials(carto_auth)`` (its body, when not installed)."""
    carto_auth = CartoAuth.from_m2m(write_credentials(tmp_path / "c.json", carto_emulator))
    try:
        from pydeck_carto import get_layer_credentials
    except ImportError:

        def get_layer_credentials(carto_auth):  # pydeck_carto/layer.py, verbatim logic
            return {
                "apiVersion": "v3",
                "apiBaseUrl": carto_auth.get_api_base_url(),
                "accessToken": carto_auth.get_access_token(),
            }

    credentials = get_layer_credentials(carto_auth)
    assert credentials == {
        "apiVersion": "v3",
        "apiBaseUrl": carto_emulator.url,
        "accessToken": carto_auth.get_access_token(),
    }


def test_constructor_with_a_token_uses_it_until_its_expiration(carto_emulator, tmp_path):
    auth = CartoAuth(
        "m2m", api_base_url=carto_emulator.url, access_token="given", expiration=time.time() + 3600
    )
    assert auth.get_access_token() == "given"
    assert auth.get_api_base_url() == carto_emulator.url
    assert carto_emulator.token_requests() == 0
    expired = CartoAuth("m2m", carto_emulator.url, "old", time.time() - 1)
    with pytest.raises(CredentialsError, match="no client_id and client_secret"):
        expired.get_access_token()


def test_constructor_refuses_unknown_modes():
    with pytest.raises(CredentialsError, match=r"Mode not supported\. Available modes: oauth, m2m"):
        CartoAuth("password")


# --------------------------------------------------------------------------- carto-auth's exceptions


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        CartoAuth.from_m2m(tmp_path / "nope.json")
    assert isinstance(raised.value, CredentialsFileError) and isinstance(raised.value, CredentialsError)
    assert str(tmp_path / "nope.json") in str(raised.value)


def test_malformed_json_is_a_json_decode_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"client_secret": "hunter2-secret", ')
    with pytest.raises(json.JSONDecodeError) as raised:
        CartoAuth.from_m2m(path)
    assert isinstance(raised.value, CredentialsError)
    assert "hunter2" not in str(raised.value) and "hunter2" not in raised.value.doc


def test_a_missing_field_is_an_attribute_error_and_an_empty_one_a_value_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"api_base_url": "https://a.example", "client_id": "i"}))
    with pytest.raises(AttributeError, match="client_secret"):
        CartoAuth.from_m2m(path)
    path.write_text(json.dumps({"api_base_url": "https://a.example", "client_id": "", "client_secret": "s"}))
    with pytest.raises(ValueError, match="client_id"):
        CartoAuth.from_m2m(path)


def test_a_wrong_secret_fails_in_from_m2m(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "c.json", carto_emulator, client_secret="wrong")
    with pytest.raises(CredentialsError, match="HTTP 401"):
        CartoAuth.from_m2m(credentials, cache_filepath=tmp_path / "t.json")


def test_dw_token_failures_are_credentials_errors(carto_emulator, tmp_path):
    auth = CartoAuth.from_m2m(write_credentials(tmp_path / "c.json", carto_emulator))
    carto_emulator.add_fault("GET /v3/connections/carto-dw/token", 403, times=1)
    with pytest.raises(CredentialsError, match="HTTP 403"):
        auth.get_carto_dw_credentials()


# --------------------------------------------------------------------------- caches


def test_use_cache_false_keeps_nothing_once_the_object_is_gone(carto_emulator, tmp_path):
    from carto_provider.auth.cache import policy as cache_module

    before = (len(cache_module._MEMORY), len(cache_module._THREAD_LOCKS), len(cache_module._LAST_ATTEMPT))
    credentials = write_credentials(tmp_path / "c.json", carto_emulator)
    auth = CartoAuth.from_m2m(credentials, use_cache=False)
    assert auth.get_access_token()
    watcher = weakref.ref(auth.cache)
    del auth
    gc.collect()
    assert watcher() is None
    after = (len(cache_module._MEMORY), len(cache_module._THREAD_LOCKS), len(cache_module._LAST_ATTEMPT))
    assert after == before
    CartoAuth.from_m2m(credentials, use_cache=False)
    assert carto_emulator.token_requests() == 2  # every object fetches its own


def test_carto_auths_files_are_never_touched(carto_emulator, tmp_path, monkeypatch):
    """carto-auth's cache files (its own format, at its default place) stay byte-identical."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = Path.home() / ".carto-auth"
    home.mkdir(parents=True)
    theirs = {"api_base_url": "https://x.example", "access_token": "theirs", "expiration": time.time() + 3600}
    for name in ("token_m2m.json", "token_oauth.json"):
        (home / name).write_text(json.dumps(theirs))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in home.iterdir()}
    credentials = write_credentials(tmp_path / "c.json", carto_emulator)
    for _ in range(3):
        assert CartoAuth.from_m2m(credentials).get_access_token() != "theirs"
    assert carto_emulator.token_requests() == 1
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in home.iterdir()} == before


def test_an_explicit_cache_filepath_holding_carto_auths_file_is_left_alone(carto_emulator, tmp_path):
    shared = tmp_path / "token.json"
    original = json.dumps(
        {"api_base_url": "https://x.example", "access_token": "t", "expiration": 1}
    ).encode()
    shared.write_bytes(original)
    credentials = write_credentials(tmp_path / "c.json", carto_emulator)
    token = CartoAuth.from_m2m(credentials, cache_filepath=shared).get_access_token()
    assert CartoAuth.from_m2m(credentials, cache_filepath=shared).get_access_token() == token
    assert shared.read_bytes() == original
    assert carto_emulator.token_requests() == 1
