"""CartoLDSHook and the LDS operators against the emulator's LDS API over loopback HTTP."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from carto_provider.api.lds import LDSQuota, batch_results
from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.lds import CartoLDSHook
from carto_provider.operators.lds import CartoBatchGeocodeOperator, CartoLDSQuotaCheckOperator
from carto_provider.testing.lds_data import lds_api
from tests.carto_jobs_support import rows

QUICK = CartoRetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05)
ADDRESSES = ["Calle Mayor 1, Madrid", "Somewhere nobody knows", "Passeig de Gracia, Barcelona", "Boston MA"]


@pytest.fixture
def lds(fast_carto, monkeypatch) -> CartoLDSHook:
    token = fast_carto.issue_api_token(apis=("lds", "sql"))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_LDS", json.dumps(fast_carto.api_token_connection(token)))
    return CartoLDSHook("carto_lds", retry_policy=QUICK, at_most_once_retry=QUICK)


def test_geocode_reverse_isolines_routing_and_quota(lds, fast_carto):
    assert lds.geocode("Gran Via, Madrid", country="ES")[0]["latitude"] == pytest.approx(40.4168)
    assert lds.geocode("Gran Via, Madrid", country="US") == []
    assert lds.reverse(41.39, 2.17)[0]["value"][0]["address"] == "Barcelona"
    polygons = lds.isolines((-3.7038, 40.4168), ranges=(300, 600))
    assert [p["range"] for p in polygons] == [300, 600]
    route = lds.routing((-3.7038, 40.4168), (2.1686, 41.3874), waypoints=[(39.47, -0.38)])
    assert route["geom"]["coordinates"][1] == [-0.38, 39.47]  # the waypoint was sent lat,lon
    quota = lds.quota()
    assert (quota.used, quota.limit, quota.remaining) == (6, 10_000, 9_994)
    assert fast_carto.token_endpoint_requests() == 0


def test_batch_geocode_keeps_order_reports_entry_errors_and_chunks(lds, fast_carto):
    results = lds.batch_geocode(ADDRESSES, batch_size=3)
    assert [r.error is None for r in results] == [True, False, True, True]
    assert results[1].error == "No results found"
    assert (results[3].latitude, results[3].longitude) == (42.3601, -71.0589)
    assert fast_carto.calls("POST /v3/lds/geocoding/batch") == 2
    assert fast_carto.events("lds_batch", "3") == 1 and fast_carto.events("lds_batch", "1") == 1
    with pytest.raises(ValueError, match="between 1 and 10000"):
        lds.batch_geocode(ADDRESSES, batch_size=10_001)


def test_a_paid_request_is_not_repeated_after_a_server_error(lds, fast_carto):
    fast_carto.add_fault("POST /v3/lds/geocoding/batch", 500)
    with pytest.raises(CartoAPIError):
        lds.batch_geocode(ADDRESSES)
    assert fast_carto.calls("POST /v3/lds/geocoding/batch") == 1


def test_a_token_not_allowed_lds_is_refused(fast_carto, monkeypatch):
    token = fast_carto.issue_api_token(apis=("sql",))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_LDS", json.dumps(fast_carto.api_token_connection(token)))
    with pytest.raises(CartoAPIError, match="not allowed to use the lds API"):
        CartoLDSHook("carto_lds", retry_policy=QUICK).quota()


def test_quota_check_fails_or_skips_before_a_run_that_would_exceed_it(lds, fast_carto):
    lds_api(fast_carto.state).settings.quota = 3
    ok = CartoLDSQuotaCheckOperator(task_id="q", requests=3, carto_conn_id="carto_lds").execute({})
    assert ok == {"used": 0, "limit": 3, "remaining": 3}
    with pytest.raises(AirflowFailException, match="3 request"):
        CartoLDSQuotaCheckOperator(task_id="q", requests=4, carto_conn_id="carto_lds").execute({})
    with pytest.raises(AirflowSkipException):
        CartoLDSQuotaCheckOperator(
            task_id="q", requests=4, on_exceed="skip", carto_conn_id="carto_lds"
        ).execute({})
    with pytest.raises(AirflowFailException, match="needs 4"):
        CartoBatchGeocodeOperator(task_id="g", addresses=ADDRESSES, carto_conn_id="carto_lds").execute({})
    assert fast_carto.calls("POST /v3/lds/geocoding/batch") == 0


def test_batch_operator_results_to_xcom_with_a_bound(lds, fast_carto):
    out = CartoBatchGeocodeOperator(task_id="g", addresses=ADDRESSES, carto_conn_id="carto_lds").execute({})
    assert (out["geocoded"], out["failed"]) == (3, 1)
    assert out["results"][0] == {
        "address": ADDRESSES[0],
        "latitude": 40.4168,
        "longitude": -3.7038,
        "error": None,
    }
    with pytest.raises(AirflowFailException, match="max_xcom_results=2"):
        CartoBatchGeocodeOperator(
            task_id="g", addresses=ADDRESSES, max_xcom_results=2, carto_conn_id="carto_lds"
        ).execute({})
    assert fast_carto.calls("POST /v3/lds/geocoding/batch") == 1


def test_batch_operator_writes_a_table_through_sql_jobs_with_bound_parameters(lds, fast_carto):
    table = "carto-dw-ac-emulator.shared.geocoded"
    hostile = "x'); DROP TABLE t; --"
    op = CartoBatchGeocodeOperator(
        task_id="g",
        addresses=[*ADDRESSES, hostile],
        destination=table,
        overwrite=True,
        poll_interval=0.1,
        carto_conn_id="carto_lds",
    )
    assert op.execute({}) == {"geocoded": 3, "failed": 2, "destination": table}
    found = rows(fast_carto, f"SELECT address, latitude, error FROM `{table}` ORDER BY address")  # noqa: S608
    assert [r["address"] for r in found] == sorted([*ADDRESSES, hostile])
    assert next(r for r in found if "Madrid" in r["address"])["latitude"] == 40.4168
    with pytest.raises(ValueError, match=r"project\.dataset\.table"):
        CartoBatchGeocodeOperator(
            task_id="g", addresses=ADDRESSES, destination="t; DROP", carto_conn_id="carto_lds"
        ).execute({})


def test_readers_are_tolerant_of_unpublished_shapes():
    assert LDSQuota.from_response({"quota": {"lds": {"used": 5, "limit": 7}}}).remaining == 2
    assert LDSQuota.from_response({"something": "else"}).remaining is None
    results = batch_results(["a", "b"], {"results": [{"value": {"latitude": 1, "longitude": 2}}]})
    assert (results[0].latitude, results[1].error) == (1.0, "missing from the reply")
