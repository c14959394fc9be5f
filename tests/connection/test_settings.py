"""How a ``carto`` connection is read, whichever way it was written (JSON, URI, Airflow's own URI).

The connections come from ``AIRFLOW_CONN_*`` variables and are read through Airflow's real lookup
(``BaseHook.get_connection``), as a task or the API server's Test button does. No network here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carto_provider.errors import CredentialsConfigError, CredentialsFileError
from carto_provider.hooks.carto import CartoAuthHook, CartoConnectionSettings

SECRET = "s3cr/et@with:odd chars"


def settings_of(monkeypatch: pytest.MonkeyPatch, value: str | dict, conn_id: str = "carto_test"):
    """Define ``conn_id`` as Airflow users do (an env var holding JSON or a URI) and read it back."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", value if isinstance(value, str) else json.dumps(value)
    )
    return CartoAuthHook(conn_id).settings


def test_json_form_keeps_every_field(monkeypatch):
    settings = settings_of(
        monkeypatch,
        {
            "conn_type": "carto",
            "host": " https://gcp-europe-west1.api.carto.com/ ",
            "login": " my-client ",
            "password": SECRET,
            "extra": {
                "auth_type": "m2m",
                "auth_url": "https://auth.carto.com/",
                "org": "org_123",
                "credentials_file": "/secrets/carto_credentials.json",
                "cache_dir": "/var/cache/carto",
            },
        },
    )
    assert settings == CartoConnectionSettings(
        conn_id="carto_test",
        auth_type="m2m",
        api_base_url="https://gcp-europe-west1.api.carto.com",
        client_id="my-client",
        client_secret=SECRET,
        auth_url="https://auth.carto.com",
        org="org_123",
        credentials_file="/secrets/carto_credentials.json",
        cache_dir="/var/cache/carto",
    )


def test_defaults_when_only_the_m2m_client_is_given(monkeypatch):
    settings = settings_of(
        monkeypatch,
        {"conn_type": "carto", "host": "gcp-us-east1.api.carto.com", "login": "id", "password": SECRET},
    )
    assert settings.auth_type == "m2m"
    assert settings.auth_url == "https://auth.carto.com"
    assert settings.api_base_url == "https://gcp-us-east1.api.carto.com"
    assert settings.org is settings.credentials_file is settings.cache_dir is None


def test_blank_extras_from_a_saved_form_mean_unset(monkeypatch):
    """The Airflow 3 form saves untouched optional fields as null, the 2.x form as ""."""
    settings = settings_of(
        monkeypatch,
        {
            "conn_type": "carto",
            "host": "https://gcp-us-east1.api.carto.com",
            "login": "id",
            "password": SECRET,
            "extra": {"auth_type": None, "auth_url": "", "org": "  ", "credentials_file": None},
        },
    )
    assert (settings.auth_type, settings.auth_url, settings.org, settings.credentials_file) == (
        "m2m",
        "https://auth.carto.com",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("uri", "api_base_url"),
    [
        ("carto://id:pw@gcp-us-east1.api.carto.com", "https://gcp-us-east1.api.carto.com"),
        ("carto://id:pw@https%3A%2F%2Fgcp-us-east1.api.carto.com", "https://gcp-us-east1.api.carto.com"),
        ("carto://http://id:pw@127.0.0.1:8808/", "http://127.0.0.1:8808"),
        ("carto://https://id:pw@carto.example.com:8443/api", "https://carto.example.com:8443/api"),
        ("carto://id:pw@carto.example.com/api", "https://carto.example.com/api"),
    ],
)
def test_uri_form_host_port_and_path_make_the_base_url(monkeypatch, uri, api_base_url):
    assert settings_of(monkeypatch, uri).api_base_url == api_base_url


def test_uri_form_extras_arrive_as_strings_and_are_parsed(monkeypatch):
    uri = (
        "carto://my-client:s3cr%2Fet%40with%3Aodd%20chars@gcp-us-east1.api.carto.com"
        "?auth_type=OAuth&auth_url=https%3A%2F%2Fauth.carto.com%2Foauth%2Ftoken&org=org_9"
        "&cache_dir=%2Ftmp%2Fcarto+cache&credentials_file="
    )
    settings = settings_of(monkeypatch, uri)
    assert settings.auth_type == "oauth"
    assert settings.auth_url == "https://auth.carto.com"  # a full token endpoint is trimmed to its base
    assert settings.org == "org_9"
    assert settings.cache_dir == "/tmp/carto cache"
    assert settings.credentials_file is None
    assert (settings.client_id, settings.client_secret) == ("my-client", SECRET)


def test_airflow_own_uri_round_trip_gives_the_same_settings(monkeypatch):
    """The API server tests a form by exporting ``Connection.get_uri()``: nothing may be lost on the way."""
    from airflow.models.connection import Connection

    extra = {"auth_url": "http://127.0.0.1:8808", "cache_dir": "/tmp/a b", "org": "org_1"}
    definition = {"host": "http://127.0.0.1:8808", "login": "id", "password": SECRET, "extra": extra}
    from_json = settings_of(monkeypatch, {"conn_type": "carto", **definition}, "carto_json")
    uri = Connection(conn_id="x", conn_type="carto", **{**definition, "extra": json.dumps(extra)}).get_uri()
    from_uri = settings_of(monkeypatch, uri, "carto_uri")
    assert {**from_uri.__dict__, "conn_id": None} == {**from_json.__dict__, "conn_id": None}


def test_unknown_auth_type_is_a_clear_error(monkeypatch):
    with pytest.raises(
        CredentialsConfigError, match=r"auth_type must be 'm2m', 'oauth' or 'api_token', not 'password'"
    ):
        settings_of(monkeypatch, "carto://id:pw@gcp-us-east1.api.carto.com?auth_type=password")


def test_repr_never_shows_the_secret(monkeypatch):
    settings = settings_of(monkeypatch, {"conn_type": "carto", "host": "h.example.com", "password": SECRET})
    assert SECRET not in repr(settings)
    assert "client_secret=***" in repr(settings)


# ---------------------------------------------------------------------------------------- credentials_file


def write_file(path: Path, **extra_fields: str) -> str:
    """A carto_credentials.json for a client ``file-client`` in the US East region."""
    fields = {"api_base_url": "https://gcp-us-east1.api.carto.com", "client_id": "file-client"}
    path.write_text(json.dumps({**fields, "client_secret": SECRET, **extra_fields}))
    return str(path)


def test_credentials_file_alone_is_enough(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path))
    path = write_file(tmp_path / "carto_credentials.json")
    settings = settings_of(monkeypatch, {"conn_type": "carto", "extra": {"credentials_file": path}})
    credentials = settings.m2m_credentials()
    assert (credentials.api_base_url, credentials.client_id, credentials.client_secret) == (
        "https://gcp-us-east1.api.carto.com",
        "file-client",
        SECRET,
    )
    assert credentials.auth_url == "https://auth.carto.com"


def test_a_credentials_file_is_used_whole_never_mixed_with_connection_fields(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path))
    path = write_file(tmp_path / "carto_credentials.json", auth_url="https://auth.example.com")
    settings = settings_of(
        monkeypatch,
        {
            "conn_type": "carto",
            "host": "https://gcp-europe-west1.api.carto.com",
            "extra": {"credentials_file": path},
        },
    )
    with pytest.raises(CredentialsConfigError, match="used whole"):
        settings.m2m_credentials()


def test_the_connections_auth_url_applies_to_a_file_without_one(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path))
    path = write_file(tmp_path / "carto_credentials.json")
    extra = {"credentials_file": path, "auth_url": "https://auth.example.com"}
    credentials = settings_of(monkeypatch, {"conn_type": "carto", "extra": extra}).m2m_credentials()
    assert credentials.auth_url == "https://auth.example.com"  # it was ignored whenever a file was set


def test_a_credentials_file_outside_the_allowed_directories_is_refused(monkeypatch, tmp_path):
    path = write_file(tmp_path / "carto_credentials.json")
    settings = settings_of(monkeypatch, {"conn_type": "carto", "extra": {"credentials_file": path}})
    with pytest.raises(CredentialsConfigError, match="credentials_file_dirs"):
        settings.m2m_credentials()  # the option is empty by default
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path / "other"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "link.json").symlink_to(path)
    escape = settings_of(
        monkeypatch,
        {"conn_type": "carto", "extra": {"credentials_file": str(tmp_path / "other" / "link.json")}},
    )
    with pytest.raises(CredentialsConfigError, match="credentials_file_dirs"):
        escape.m2m_credentials()  # a link out of the directory is followed, then refused


def test_missing_credentials_file_names_the_path(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path))
    missing = str(tmp_path / "nowhere.json")
    settings = settings_of(monkeypatch, {"conn_type": "carto", "extra": {"credentials_file": missing}})
    with pytest.raises(CredentialsFileError, match="does not exist") as raised:
        settings.m2m_credentials()
    assert missing in str(raised.value)


def test_nothing_to_authenticate_with_says_what_to_set(monkeypatch):
    settings = settings_of(
        monkeypatch, {"conn_type": "carto", "host": "gcp-us-east1.api.carto.com", "login": "id"}
    )
    with pytest.raises(CredentialsConfigError, match=r"no Client Secret \(password\).*'credentials_file'"):
        settings.m2m_credentials()
