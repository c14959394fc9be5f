"""Every way Airflow users define the ``carto`` connection works: JSON and URI env vars, the metadata DB
(``airflow connections add``), a secrets backend, and a ``carto_credentials.json`` on the worker.

DB and secrets-backend connections are checked the way users check them: ``airflow connections test``
in a subprocess (``[core] test_connection = Enabled`` is set by conftest), and a real DAG run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import airflow
from packaging.version import Version

from carto_provider.hooks.carto import CartoAuthHook
from tests.conftest import airflow_cli
from tests.helpers import write_credentials

WRONG_SECRET = "wrong-secret-0123456789"
AIRFLOW_3 = Version(airflow.__version__).major >= 3


def airflow(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this interpreter with the tests' AIRFLOW_HOME."""
    return subprocess.run(
        [airflow_cli(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def connection_json(emulator, tmp_path: Path, **overrides) -> dict:
    """The JSON form of a connection to the emulator, tokens cached under ``tmp_path``."""
    extra = {"auth_url": emulator.url, "cache_dir": str(tmp_path / "token-cache")}
    return {**emulator.airflow_connection(), "extra": extra, **overrides}


def connection_uri(emulator, tmp_path: Path, secret: str) -> str:
    """The URI form as the README documents it: the host URL-encoded, extras as query parameters."""
    query = (
        f"auth_url={quote(emulator.url, safe='')}&cache_dir={quote(str(tmp_path / 'token-cache'), safe='')}"
    )
    return f"carto://{emulator.client_id}:{quote(secret, safe='')}@{quote(emulator.url, safe='')}?{query}"


# ---------------------------------------------------------------------------------------------- env vars


def test_json_env_var(monkeypatch, tmp_path, carto_emulator):
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_JSON", json.dumps(connection_json(carto_emulator, tmp_path)))
    ok, message = CartoAuthHook("carto_json").test_connection()
    assert ok, message
    assert CartoAuthHook("carto_json").get_api_base_url() == carto_emulator.url


def test_uri_env_var(monkeypatch, tmp_path, carto_emulator):
    secret = "s3cr/et with@odd:chars"
    carto_emulator.add_client("uri-client", secret)
    uri = connection_uri(carto_emulator, tmp_path, secret).replace(carto_emulator.client_id, "uri-client")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_URI", uri)
    ok, message = CartoAuthHook("carto_uri").test_connection()
    assert ok, message
    assert carto_emulator.token_requests("uri-client") == 1
    assert (tmp_path / "token-cache").is_dir()  # the cache_dir extra arrived as a string and was used


def test_credentials_file_instead_of_login_and_password(monkeypatch, tmp_path, carto_emulator):
    path = write_credentials(tmp_path / "carto_credentials.json", carto_emulator)
    extra = {"credentials_file": str(path), "cache_dir": str(tmp_path / "token-cache")}
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_FILE", json.dumps({"conn_type": "carto", "extra": extra}))
    monkeypatch.setenv("AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS", str(tmp_path))
    ok, message = CartoAuthHook("carto_file").test_connection()
    assert ok, message
    assert CartoAuthHook("carto_file").get_access_token()
    assert carto_emulator.token_requests() == 1


# ---------------------------------------------------------------------------------------------- metadata DB


def test_connections_added_with_the_cli_are_tested_and_used_by_tasks(airflow_db, tmp_path, carto_emulator):
    good = json.dumps(connection_json(carto_emulator, tmp_path))
    bad = connection_uri(carto_emulator, tmp_path, WRONG_SECRET)
    added = airflow("connections", "add", "carto_default", "--conn-json", good)
    assert added.returncode == 0, added.stderr[-3000:]
    try:
        added = airflow("connections", "add", "carto_cli_bad", "--conn-uri", bad)
        assert added.returncode == 0, added.stderr[-3000:]

        tested = airflow("connections", "test", "carto_default")
        assert tested.returncode == 0, tested.stdout + tested.stderr[-3000:]
        assert "Connection success!" in tested.stdout

        tested = airflow("connections", "test", "carto_cli_bad")
        assert tested.returncode == (1 if AIRFLOW_3 else 0)  # Airflow 2.x exits 0 on a failed test
        assert "Connection failed!" in tested.stdout
        assert "Check the client id and client secret" in tested.stdout
        assert WRONG_SECRET not in tested.stdout + tested.stderr

        # a task resolves the stored connection (Airflow 3: through the Execution API)
        before = carto_emulator.calls("GET /v3/connections/carto-dw/token")
        run = airflow("dags", "test", "carto_quickstart")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert carto_emulator.calls("GET /v3/connections/carto-dw/token") == before + 1
    finally:
        delete_connections("carto_default", "carto_cli_bad")


def delete_connections(*conn_ids: str) -> None:
    """Remove connections from the session's metadata DB (in-process: a CLI call per id costs seconds)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(Connection).where(Connection.conn_id.in_(conn_ids)))


# ---------------------------------------------------------------------------------------------- secrets backend


def test_secrets_backend_json_and_uri_entries(tmp_path, carto_emulator):
    """A secrets backend holds either form; Airflow's LocalFilesystemBackend stands in for Vault & co."""
    secrets_file = tmp_path / "connections.json"
    secrets_file.write_text(
        json.dumps(
            {
                "carto_sb_json": connection_json(carto_emulator, tmp_path),
                "carto_sb_uri": connection_uri(carto_emulator, tmp_path, carto_emulator.client_secret),
            }
        )
    )
    env = {
        "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(secrets_file)}),
    }
    for conn_id in ("carto_sb_json", "carto_sb_uri"):
        tested = airflow("connections", "test", conn_id, env=env)
        assert tested.returncode == 0, conn_id + tested.stdout + tested.stderr[-3000:]
        assert "Connection success!" in tested.stdout
    assert carto_emulator.calls("GET /v3/connections") == 2
