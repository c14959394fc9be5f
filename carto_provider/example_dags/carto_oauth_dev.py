"""Local development with your own CARTO login: the `carto_dev` connection has the extra
`{"auth_type": "oauth"}`, so its tasks use the login cached by `carto-provider login` (they never open a
browser; without a login they fail at once, saying to run `carto-provider login`). See the README,
"Local development with your own CARTO login".
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task  # type: ignore[no-redef]

from carto_provider.hooks.carto import CartoAuthHook

CONNECTION_ID = "carto_dev"


@dag(
    dag_id="carto_oauth_dev",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["carto", "example", "oauth"],
)
def carto_oauth_dev() -> None:
    @task
    def list_my_connections() -> list[str]:
        from carto_provider.auth.tokens import fingerprint

        hook = CartoAuthHook(CONNECTION_ID)
        body = hook.request("GET", "/v3/connections").json()
        names = sorted(c.get("name", "?") for c in (body.get("data", []) if isinstance(body, dict) else body))
        # A fingerprint identifies the token in logs; the token itself never leaves the hook.
        print(
            f"As myself on CARTO at {hook.get_api_base_url()} "
            f"(token fp={fingerprint(hook.get_access_token())}): connections {names}"
        )
        return names

    list_my_connections()


dag = carto_oauth_dev()
