"""Item 7: no URL user info (nor query string) in lineage, log lines, errors or XCom."""

from __future__ import annotations

from carto_provider.api.jobs import IMPORT, CartoJob
from carto_provider.api.responses import redact_url
from carto_provider.api.transport import Transport
from carto_provider.lineage import url_dataset

URL = "https://alice:pa55word-0123@files.example.com:8443/data/x.csv?X-Amz-Signature=abc"


def test_a_lineage_namespace_has_no_user_info():
    dataset = url_dataset(URL)
    assert (dataset.namespace, dataset.name) == ("https://files.example.com:8443", "/data/x.csv")


def test_urls_in_log_lines_and_errors_have_no_password_or_query():
    assert redact_url(URL) == "https://alice:***@files.example.com:8443/data/x.csv"


def test_an_import_summary_for_xcom_and_trigger_events_has_no_url():
    job = CartoJob.from_response(IMPORT, {"id": "imp_1", "status": "running", "url": URL})
    assert "pa55word" not in repr(job.summary())


def test_an_unreachable_api_error_names_no_user_info():
    transport = Transport("http://alice:pa55word-0123@127.0.0.1:9")
    try:
        transport.request("GET", "/v3/x", policy=None)
    except Exception as exc:
        assert "pa55word" not in str(exc)
