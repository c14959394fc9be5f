"""The Airflow 3 REST API of the native cluster, with real auth: a JWT from ``POST /auth/token``."""

from __future__ import annotations

import ast
import contextlib
import json
import time
from datetime import datetime, timezone
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowApi:
    """A logged-in client of ``/api/v2``."""

    def __init__(self, url: str, username: str, password: str) -> None:
        answer = httpx.post(
            f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
        self.client = httpx.Client(
            base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    @staticmethod
    def answers(url: str) -> bool:
        """Whether the API server answers at all."""
        try:
            return httpx.get(f"{url}/api/v2/version", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params=params)
        answer.raise_for_status()
        return answer.json()

    def all_healthy(self) -> bool:
        """Scheduler, triggerer and DAG processor all heartbeating."""
        health = self.get("/monitor/health")
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

    def has_dag(self, dag_id: str) -> bool:
        return self.client.get(f"/dags/{dag_id}").status_code == 200

    def unpause(self, dag_id: str) -> None:
        """Let the scheduler run ``dag_id`` (the cluster creates DAGs paused)."""
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a run of ``dag_id`` now (a logical date, so ``{{ ds }}`` renders); its run id."""
        logical_date = datetime.now(timezone.utc).isoformat()
        body = {"logical_date": logical_date, "conf": conf or {}}
        answer = self.client.post(f"/dags/{dag_id}/dagRuns", json=body)
        if answer.status_code != 200:
            raise AssertionError(f"triggering {dag_id}: {answer.status_code} {answer.text}")
        return str(answer.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float = 300) -> dict[str, str]:
        """The final state of each run (``success``/``failed``); raises after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while True:
            states = {run_id: self.run_state(dag_id, run_id) for run_id in run_ids}
            if all(state in TERMINAL_RUN_STATES for state in states.values()):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs of {dag_id} not finished after {timeout:.0f}s: {states}")
            time.sleep(1)

    def wait_until_idle(self, dag_id: str, timeout: float = 300) -> None:
        """Wait until the scheduler has no run of ``dag_id`` to create or finish: unpausing a
        scheduled DAG (``catchup=False``) starts its latest interval's run, and a run triggered
        meanwhile would queue behind it (``max_active_runs=1``) and count its time."""
        deadline = time.monotonic() + timeout
        while True:
            due = self.get(f"/dags/{dag_id}")["next_dagrun_run_after"]
            due_now = due is not None and datetime.fromisoformat(due) <= datetime.now(timezone.utc)
            active = self.get(f"/dags/{dag_id}/dagRuns", state=["queued", "running"])["total_entries"]
            if not due_now and not active:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dag_id} still busy after {timeout:.0f} s (due: {due}, active: {active})"
                )
            time.sleep(0.5)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances by task id (mapped tasks not expected)."""
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
        return {ti["task_id"]: ti for ti in found}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance, oldest first (``hostname``, ``state``, ``try_number``...)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return sorted(self.get(path)["task_instances"], key=lambda t: t["try_number"])

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """The task's ``return_value`` XCom, decoded (the API gives it as stored, JSON or its text)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.get(path, deserialize=True)["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
            with contextlib.suppress(ValueError, SyntaxError):
                return ast.literal_eval(value)
        return value
