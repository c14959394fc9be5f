"""Quickstart: get a CARTO token and the CARTO Data Warehouse credentials through the `carto_default`
connection. Run it offline with `make demo`, or against your account after setting up the connection.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task  # type: ignore[no-redef]

from carto_provider.hooks.carto import CartoAuthHook


@dag(
    dag_id="carto_quickstart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["carto", "example"],
)
def carto_quickstart() -> None:
    @task
    def authenticate() -> dict[str, str]:
        from carto_provider.auth.tokens import fingerprint

        hook = CartoAuthHook()
        token = hook.get_access_token()
        project_id, dw_token = hook.get_carto_dw_credentials()
        # Only fingerprints leave the task: tokens never go to XCom.
        return {
            "api_base_url": hook.get_api_base_url(),
            "token_fingerprint": fingerprint(token),
            "dw_project_id": project_id,
            "dw_token_fingerprint": fingerprint(dw_token),
        }

    @task
    def report(info: dict[str, str]) -> None:
        print(
            f"CARTO at {info['api_base_url']}: token fp={info['token_fingerprint']}, "
            f"Data Warehouse project {info['dw_project_id']} (token fp={info['dw_token_fingerprint']})"
        )

    report(authenticate())


dag = carto_quickstart()
