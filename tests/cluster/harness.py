"""A real Airflow 3 cluster on this machine, configured like docker-compose.yml (``make test-cluster``).

PostgreSQL (a throw-away cluster), ``redis-server``, the CARTO emulator, and Airflow with the
CeleryExecutor: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two ``celery
worker``s, each a process group with its own ``HOME`` (its own "machine": file token caches are not
shared, so only the Redis token cache can make the fleet share a token).

The Airflow settings are the compose file's (``deploy/airflow.env`` plus the compose defaults, read
with ``docker-compose config``), with each compose service name mapped to the loopback port picked
for it. :data:`TEST_OVERRIDES` lists everything the tests change on top, and why.

>>> with AirflowCluster() as cluster:                    # doctest: +SKIP
...     run_id = cluster.api.trigger("carto_daily_etl")
...     assert cluster.api.wait_for_runs("carto_daily_etl", [run_id]) == {run_id: "success"}
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from carto_provider.testing.emulator import CartoEmulator
from carto_provider.testing.redis_server import RedisServer
from tests.cluster.api import AirflowApi
from tests.cluster.services import (
    REPO,
    Postgres,
    Service,
    compose_environment,
    free_port,
    on_loopback,
    wait_for,
)

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ADMIN = "admin"
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 4
#: The DAG folders, as DAG bundles: the examples (as mounted by compose) and the scenarios' DAGs.
BUNDLES = {
    "carto_examples": REPO / "carto_provider" / "example_dags",
    "cluster_dags": REPO / "tests" / "cluster" / "dags",
}

#: What the tests change on top of the compose settings, and why.
TEST_OVERRIDES = {
    # The image has the FAB auth manager; this venv does not. The simple auth manager has the same
    # /auth/token JWT flow for the REST API, with a user from a passwords file.
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
    # Only the DAGs a scenario unpauses run (no scheduled runs of the examples in the counts).
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
    # Two cores: one API server worker, one parsing process, parse each file once.
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
    # Seconds, not minutes: scheduling loops, a lost worker's task noticed after 20 s without a
    # heartbeat, a stopped triggerer's triggers taken over 10 s after its last heartbeat.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "32",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
    # CARTO job status every second (the emulator's jobs take seconds, not minutes).
    "AIRFLOW__CARTO__POLL_INTERVAL": "1",
    # Each process is its own machine: its name is the hostname Airflow records for its tasks.
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.node.hostname",
}


class AirflowCluster:
    """Starts everything in a temporary directory; :meth:`stop` removes it all, also after a failure."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="carto-cluster-"))
        self.root.chmod(0o711)  # the postgres user must reach its own directory inside
        self.postgres = Postgres(self.root / "postgres")
        self.redis = RedisServer()
        self.carto = CartoEmulator()
        self.api_port = free_port()
        self.services: dict[str, Service] = {}
        self.password = secrets.token_urlsafe(12)
        self.env: dict[str, str] = {}
        self._api: AirflowApi | None = None

    # ------------------------------------------------------------------ settings

    def airflow_environment(self) -> dict[str, str]:
        """The compose environment on loopback, plus :data:`TEST_OVERRIDES` and this cluster's paths."""
        addresses = {
            "postgres": self.postgres.address,
            "redis": f"127.0.0.1:{self.redis.port}",
            "airflow-apiserver": f"127.0.0.1:{self.api_port}",
            "carto-emulator": f"127.0.0.1:{self.carto.port}",
        }
        compose = {
            k: v
            for k, v in compose_environment(self.root).items()
            if k not in {"_PIP_ADDITIONAL_REQUIREMENTS"}
        }
        passwords = self.root / "passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.password}), encoding="utf-8")
        bundles = [
            {
                "name": name,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(path)},
            }
            for name, path in BUNDLES.items()
        ]
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CARTO_", "_AIRFLOW"))
        }
        return {
            **inherited,
            **on_loopback(compose, addresses),
            **TEST_OVERRIDES,
            "AIRFLOW_HOME": str(self.root / "airflow"),  # shared, like the compose volumes
            "AIRFLOW_CONFIG": str(self.root / "airflow" / "config" / "airflow.cfg"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "PYTHONPATH": str(REPO),
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> AirflowCluster:
        """Start every part and return once the API is up, all components healthy and the DAGs parsed."""
        try:
            self.postgres.start()
            self.redis.start()
            self.carto.start()
            self.env = self.airflow_environment()
            (self.root / "logs").mkdir()
            self._migrate()
            self.services["api-server"] = self._service(
                "api-server", ["api-server", "--port", str(self.api_port)]
            )
            for name in ("scheduler", "dag-processor"):
                self.services[name] = self._service(name, [name])
            self.services["triggerer"] = self._service("triggerer", ["triggerer", "--skip-serve-logs"])
            for name in WORKERS:
                self.services[name] = self._worker(name)
            for service in self.services.values():
                service.start()
            self._wait_until_ready()
        except BaseException:
            self.stop(failed=True)
            raise
        return self

    def _migrate(self) -> None:
        result = subprocess.run(
            [AIRFLOW, "db", "migrate"], env=self._env_for("init"), capture_output=True, text=True, timeout=600
        )
        if result.returncode:
            raise RuntimeError(
                f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )

    def _env_for(self, name: str) -> dict[str, str]:
        home = self.root / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        return {**self.env, "HOME": str(home), "CARTO_CLUSTER_NODE": name}

    def _service(self, name: str, args: list[str]) -> Service:
        log = self.root / "logs" / f"{name}.log"
        return Service(name, [AIRFLOW, *args], self._env_for(name), log, cwd=self.root)

    def _worker(self, name: str) -> Service:
        args = ["celery", "worker", "--skip-serve-logs", "--concurrency", str(WORKER_CONCURRENCY)]
        return self._service(name, [*args, "--celery-hostname", f"{name}@%h"])

    def _wait_until_ready(self) -> None:
        wait_for("the API server", self._api_answers, timeout=180)
        wait_for("healthy scheduler, triggerer and DAG processor", self.api.all_healthy, timeout=180)
        for name in WORKERS:
            self.wait_for_worker(name)
        for dag_id in ("carto_daily_etl", "cluster_fleet"):
            wait_for(f"DAG {dag_id} to be parsed", lambda d=dag_id: self.api.has_dag(d), timeout=240)

    def _api_answers(self) -> bool:
        for name, service in self.services.items():
            if not service.running:
                raise RuntimeError(f"{name} exited:\n{service.tail()}")
        return AirflowApi.answers(self.api_url)

    def wait_for_worker(self, name: str, timeout: float = 120) -> None:
        """Until the Celery worker ``name`` says it is ready."""
        service = self.services[name]

        def ready() -> bool:
            if not service.running:
                raise RuntimeError(f"{name} exited:\n{service.tail()}")
            return f"{name}@" in service.output() and " ready." in service.output()

        wait_for(f"{name} to be ready", ready, timeout)

    def restart(self, name: str) -> None:
        """Start the stopped or killed service ``name`` again (same HOME, same settings)."""
        service = self.services[name]
        service.start()
        if name in WORKERS:
            self.wait_for_worker(name)

    def stop(self, failed: bool = False) -> None:
        """Stop every Airflow process, then the servers, and delete the directory."""
        if failed:
            for service in self.services.values():
                sys.stderr.write(f"\n===== {service.name} (end of log) =====\n{service.tail()}\n")
        for service in self.services.values():  # all at once: each takes seconds to wind down
            service.terminate()
        for service in self.services.values():
            service.stop()
        for part in (self.carto.stop, self.redis.stop, self.postgres.stop):
            try:
                part()
            except Exception as exc:
                sys.stderr.write(f"cluster teardown: {exc}\n")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> AirflowCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(failed=exc is not None)

    # ------------------------------------------------------------------ using it

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api(self) -> AirflowApi:
        """The REST API, logged in as the admin user (a JWT from ``/auth/token``)."""
        if self._api is None:
            self._api = AirflowApi(self.api_url, ADMIN, self.password)
        return self._api

    def log(self, name: str) -> str:
        """The whole log of service ``name``."""
        return self.services[name].log.read_text(errors="replace")

    def task_logs(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str]:
        """A task's log files by name: ``attempt=N.log`` (the worker's) and
        ``attempt=N.log.trigger.<triggerer job id>.log`` (what a triggerer wrote while it was deferred)."""
        folder = (
            self.root / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        )
        return {path.name: path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*"))}

    def cold_token_caches(self) -> None:
        """Forget every cached CARTO token: the Redis token cache's database and each machine's files."""
        import redis

        from carto_provider.auth.settings import default_cache_path

        redis.Redis.from_url(self.env["AIRFLOW__CARTO__TOKEN_CACHE_REDIS_URL"]).flushdb()
        cache_dir = default_cache_path("token").parent.relative_to(Path.home())  # where under a HOME
        for home in (self.root / "home").iterdir():
            shutil.rmtree(home / cache_dir, ignore_errors=True)
        left = [str(path) for path in (self.root / "home").rglob("*token*")]
        if left:  # the provider keeps tokens somewhere else now: a cold start would not be cold
            raise RuntimeError(f"token files left after clearing the caches: {left}")

    def fail_for(self, pattern: str, seconds: float, status: int = 503) -> threading.Thread:
        """Make the emulator answer ``status`` to every request matching ``pattern`` (``"METHOD /path"``)
        for ``seconds`` counted from the first such request (so the outage is as long for every
        caller whenever the tasks get there); ``join`` the returned thread to wait for the end."""
        first = self.carto.calls(pattern) + 1
        self.carto.add_fault(pattern, status, times=10**9)

        def outage() -> None:
            wait_for(f"a request matching {pattern}", lambda: self.carto.calls(pattern) >= first, 600, 0.1)
            time.sleep(seconds)
            with self.carto.state.lock:
                self.carto.state.faults[:] = [f for f in self.carto.state.faults if f.pattern != pattern]

        thread = threading.Thread(target=outage, name=f"outage {pattern}", daemon=True)
        thread.start()
        return thread

    def reconfigure_workers(self, **env: str) -> None:
        """Restart both Celery workers (gracefully) with ``env`` added to their settings."""
        for name in WORKERS:
            self.services[name].stop()
            self.services[name].env.update(env)
        for name in WORKERS:
            self.services[name].start()
        for name in WORKERS:
            self.wait_for_worker(name)

    def home(self, name: str) -> Path:
        """The HOME of service ``name`` (its file token cache lives under it)."""
        return self.root / "home" / name
