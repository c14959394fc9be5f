"""The CARTO Data Warehouse client keeps working past DW-token expiry.

Integration tests use the real google-cloud-bigquery client against the emulator over loopback HTTP,
with DW tokens that die after 1 s: every refresh is counted on the emulator (``dw_token`` events are
refreshes + 1, ``bigquery_unauthorized`` counts BigQuery's 401s). The proactive (before-expiry)
refresh, which needs 26 minutes of real time, is a unit test with a frozen clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth import _helpers as google_auth_helpers
from google.auth import exceptions as google_auth_exceptions

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.dw import client as dw
from carto_provider.errors import CartoAPIError
from carto_provider.testing.bigquery_jobs import bigquery_settings
from carto_provider.testing.emulator import CartoEmulator

#: DW-token lifetime on the emulator, and how long the "long" query runs: five lifetimes.
SHORT_DW_LIFETIME = 1
LONG_QUERY_SECONDS = 5.0


def make_auth(carto: CartoEmulator, tmp_path: Path, secrets: list[str] | None = None) -> CartoAuth:
    return CartoAuth.from_values(
        carto.url,
        carto.client_id,
        carto.client_secret,
        auth_url=carto.url,
        cache_filepath=tmp_path / "token.json",
        bigquery_api_endpoint=carto.url,
        on_secret=secrets.append if secrets is not None else None,
    )


@pytest.fixture
def short_lived_dw() -> Iterator[CartoEmulator]:
    """An emulator whose DW tokens expire after 1 s and whose jobs run for five of those lifetimes."""
    with CartoEmulator(dw_token_lifetime=SHORT_DW_LIFETIME) as carto:
        settings = bigquery_settings(carto)
        settings.job_duration = LONG_QUERY_SECONDS
        settings.max_poll_wait = 0.1  # the client polls getQueryResults about 10 times a second
        yield carto


# ---------------------------------------------------------------------------- refresh while working


@pytest.mark.parametrize("api", ["query_result", "query_and_wait"])
def test_a_query_outliving_several_dw_tokens_keeps_working(
    short_lived_dw: CartoEmulator, tmp_path: Path, api: str
) -> None:
    carto = short_lived_dw
    client = make_auth(carto, tmp_path).get_carto_dw_client()
    sql = "SELECT 40 + 2 AS answer"
    rows = list(client.query(sql).result()) if api == "query_result" else list(client.query_and_wait(sql))

    assert [row.answer for row in rows] == [42]
    refreshes = carto.events("dw_token") - 1
    unauthorized = carto.events("bigquery_unauthorized")
    print(f"{api}: {refreshes} DW-token refreshes, {unauthorized} BigQuery 401s in {LONG_QUERY_SECONDS} s")
    # The job ran for five 1-s token lifetimes while the client polled it: tokens kept dying mid-work.
    assert refreshes >= 3
    # Every refresh was google-auth answering a 401 with exactly one new token, and every 401 was healed.
    assert refreshes == unauthorized
    assert carto.token_requests() == 1  # the CARTO API token itself was reused throughout


def test_a_load_job_outliving_dw_tokens_completes(short_lived_dw: CartoEmulator, tmp_path: Path) -> None:
    carto = short_lived_dw
    client = make_auth(carto, tmp_path).get_carto_dw_client()
    job = client.load_table_from_json([{"n": i} for i in range(100)], f"{client.project}.shared.long_load")
    assert job.result().output_rows == 100
    refreshes = carto.events("dw_token") - 1
    print(f"load job: {refreshes} DW-token refreshes, {carto.events('bigquery_unauthorized')} BigQuery 401s")
    # The client polls a load job with growing back-off, so fewer refreshes than for a query; but the
    # poll that saw it DONE (>= 5 s after the upload) needed a token newer than the first (1 s) one.
    assert refreshes >= 1
    assert refreshes == carto.events("bigquery_unauthorized")


def test_a_401_mid_work_triggers_exactly_one_refresh(carto_emulator: CartoEmulator, tmp_path: Path) -> None:
    carto = carto_emulator
    client = make_auth(carto, tmp_path).get_carto_dw_client()
    assert next(iter(client.query_and_wait("SELECT 1 AS one"))).one == 1
    assert carto.events("dw_token") == 1  # the client's first token

    first_token = client._credentials.token
    carto.revoke(first_token)  # CARTO/Google revoked it: BigQuery now answers 401
    assert next(iter(client.query_and_wait("SELECT 2 AS two"))).two == 2
    assert carto.events("bigquery_unauthorized") == 1
    assert carto.events("dw_token") == 2  # exactly one refresh
    assert client._credentials.token != first_token

    client.query_and_wait("SELECT 3")
    assert carto.events("dw_token") == 2  # the new token is kept, no more refreshes


def test_dw_tokens_are_handed_to_the_masker_and_never_logged(
    carto_emulator: CartoEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets: list[str] = []
    client = make_auth(carto_emulator, tmp_path, secrets).get_carto_dw_client()
    first = client._credentials.token
    carto_emulator.revoke(first)
    with caplog.at_level(logging.DEBUG):
        client.query_and_wait("SELECT 1")
    second = client._credentials.token
    assert first in secrets and second in secrets  # both DW tokens went through on_secret (mask_secret)
    assert "Refreshed the CARTO Data Warehouse token" in caplog.text
    assert first not in caplog.text and second not in caplog.text


def test_the_hook_client_uses_the_bigquery_api_endpoint_extra(
    carto_emulator: CartoEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from carto_provider.hooks.carto import CartoAuthHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        carto_emulator.airflow_connection_json(
            cache_dir=str(tmp_path), bigquery_api_endpoint=carto_emulator.url
        ),
    )
    client = CartoAuthHook().get_carto_dw_client(location="US")
    assert carto_emulator.url == client._connection.API_BASE_URL
    assert client.project == carto_emulator.state.project_id
    assert client.location == "US"
    assert next(iter(client.query_and_wait("SELECT 'ok' AS status"))).status == "ok"


# ---------------------------------------------------------------------------- the refresh logic


class FrozenClock:
    """A naive-UTC clock the test moves by hand, shared with google-auth's own clock."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class CountingSource:
    """A DW-credentials source that hands out token-1, token-2..."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> tuple[str, str]:
        self.calls += 1
        return "project-x", f"token-{self.calls}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(google_auth_helpers, "utcnow", frozen)
    return frozen


def authorize(credentials: Any) -> str:
    headers: dict[str, str] = {}
    credentials.before_request(None, "GET", "https://bigquery.example/", headers)
    return headers["authorization"]


def test_refreshes_before_the_assumed_expiry(clock: FrozenClock) -> None:
    source = CountingSource()
    project, credentials = dw.dw_credentials(source, clock=clock)
    assert project == "project-x"
    assert credentials.expiry == clock.now + dt.timedelta(seconds=dw.DW_TOKEN_ASSUMED_LIFETIME)

    # google-auth refreshes 3 min 45 s before the reported expiry: 30 min - 3:45 = 26:15.
    clock.advance(minutes=26, seconds=14)
    assert authorize(credentials) == "Bearer token-1"
    assert source.calls == 1
    clock.advance(seconds=2)
    assert authorize(credentials) == "Bearer token-2"
    assert source.calls == 2
    assert credentials.expiry == clock.now + dt.timedelta(minutes=30)


def test_a_lifetime_below_google_auths_threshold_is_raised_to_the_minimum(clock: FrozenClock) -> None:
    source = CountingSource()
    _, credentials = dw.dw_credentials(source, token_lifetime=1, clock=clock)
    assert credentials.expiry - clock.now == dt.timedelta(seconds=dw.MIN_DW_TOKEN_LIFETIME)
    clock.advance(seconds=dw.MIN_DW_TOKEN_LIFETIME)
    assert authorize(credentials) == "Bearer token-2"  # no "already expired" RefreshError


def test_expiry_is_naive_utc() -> None:
    _, credentials = dw.dw_credentials(CountingSource())
    assert credentials.expiry.tzinfo is None
    assert credentials.valid


def test_a_failed_refresh_says_what_failed(clock: FrozenClock) -> None:
    calls = iter([("p", "token-1")])

    def source() -> tuple[str, str]:
        for value in calls:
            return value
        raise CartoAPIError("The CARTO API answered 403 for /v3/connections/carto-dw/token: forbidden")

    _, credentials = dw.dw_credentials(source, clock=clock)
    clock.advance(hours=1)
    with pytest.raises(google_auth_exceptions.RefreshError, match=r"CARTO Data Warehouse token.*403"):
        authorize(credentials)


def test_a_missing_bigquery_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(ImportError, match=r"pip install 'airflow-provider-carto\[bigquery\]'"):
        dw.import_bigquery()


def test_client_options_keep_the_callers_and_add_the_endpoint() -> None:
    from google.api_core.client_options import ClientOptions

    client = dw.build_dw_client(
        CountingSource(),
        api_endpoint="http://127.0.0.1:9",
        client_options=ClientOptions(quota_project_id="quota"),
    )
    assert client._connection.API_BASE_URL == "http://127.0.0.1:9"
    assert client.project == "project-x"


def test_importing_the_provider_does_not_import_bigquery_or_the_emulator() -> None:
    code = (
        "import sys, carto_provider.auth, carto_provider.auth.dw.client, carto_provider.hooks.carto, "
        "carto_provider.testing.warehouse, carto_provider.testing.bigquery_sql; "
        "heavy = [m for m in ('google.cloud.bigquery', 'duckdb', 'sqlglot') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
