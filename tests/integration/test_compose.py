"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

* ``docker-compose config`` (Debian's docker-compose) parses, interpolates and validates the file;
* the invariants of a working Airflow 3.3 Celery deployment are asserted on the YAML;
* the provider settings every Airflow service gets are run for real: inside a private network and
  mount namespace (``unshare``), ``carto-emulator`` and ``redis`` resolve to loopback, the emulator
  and a redis-server listen on the compose ports, and worker processes use the rendered environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
    "airflow-cli",
    "flower",
}
#: Environment that only some Airflow services have, on purpose (as in Airflow's official file).
PER_SERVICE_ENV = {"DUMB_INIT_SETSID", "CONNECTION_CHECK_MAX_COUNT", "_PIP_ADDITIONAL_REQUIREMENTS"}
EMULATOR_PORT = 8808


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing; run `make system-deps`")
        pytest.skip(f"{tool} is not installed (make system-deps)")
    return path


def raw() -> dict[str, Any]:
    """The file as written (anchors and merge keys resolved by PyYAML, no interpolation)."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose builds it: its env_file (the shared Airflow settings, also
    read by the native cluster of ``make test-cluster``), then its own ``environment`` on top."""
    from tests.cluster.services import read_env_file

    env_file = service.get("env_file")
    shared = read_env_file(REPO / env_file) if env_file else {}
    return {**shared, **(service.get("environment") or {})}


def compose(*args: str, file: Path = COMPOSE, env_file: Path | None = None) -> subprocess.CompletedProcess:
    """Run Debian's docker-compose (v1; no engine needed for ``config``) on ``file``, from a clean
    environment so that nothing but ``env_file`` feeds the interpolation."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CARTO_", "_AIRFLOW", "_PIP"))
    }
    env_args = ["--env-file", str(env_file)] if env_file else []
    command = [require("docker-compose"), "--project-directory", str(REPO), *env_args, "-f", str(file), *args]
    return subprocess.run(command, capture_output=True, text=True, env=clean, timeout=120)


def rendered(tmp_path: Path, env_text: str = "") -> dict[str, Any]:
    """``docker-compose config`` output for an env file holding ``env_text`` (nothing else is read)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_text, encoding="utf-8")
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def env_example_filled_in() -> str:
    """.env.example as a user with a real CARTO account fills it in: every commented setting enabled."""
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    return "\n".join(re.sub(r"^# (?=[A-Z_]+=)", "", line) for line in lines) + "\n"


def carto_connection(environment: dict[str, str]) -> dict[str, Any]:
    return json.loads(environment["AIRFLOW_CONN_CARTO_DEFAULT"])


# ---------------------------------------------------------------------------- validation


def test_docker_compose_config_validates_the_file(tmp_path):
    empty = tmp_path / "empty.env"
    empty.touch()
    for env_file in (empty, REPO / ".env.example"):
        result = compose("config", "-q", env_file=env_file)
        assert result.returncode == 0, result.stderr


def test_docker_compose_config_rejects_a_broken_file(tmp_path):
    """The validation above can fail: an invalid depends_on condition is refused."""
    broken = COMPOSE.read_text(encoding="utf-8").replace("service_completed_successfully", "finished", 1)
    (tmp_path / "docker-compose.yml").write_text(broken, encoding="utf-8")
    result = compose("config", "-q", file=tmp_path / "docker-compose.yml")
    assert result.returncode != 0
    assert "is invalid" in result.stderr


# ---------------------------------------------------------------------------- invariants


def test_the_official_celery_services_are_all_there():
    services = raw()["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "carto-emulator"} == set(services)
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    env = environment_of(services["airflow-worker"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert environment_of(services["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"
    assert services["airflow-init"]["user"] == "0:0"


def test_every_airflow_service_runs_the_same_image_with_the_same_config():
    services = raw()["services"]
    reference = services["airflow-worker"]
    common_env = {k: v for k, v in environment_of(reference).items() if k not in PER_SERVICE_ENV}
    for name in AIRFLOW_SERVICES | {"carto-emulator"}:
        assert services[name]["image"] == reference["image"], name
        assert services[name]["build"] == reference["build"] == ".", name
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["env_file"] == reference["env_file"] == "deploy/airflow.env", name
        env = {k: v for k, v in environment_of(service).items() if k not in PER_SERVICE_ENV}
        if name == "airflow-init":
            env = {k: v for k, v in env.items() if not k.startswith("_AIRFLOW_")}
        assert env == common_env, name
        assert service["volumes"] == reference["volumes"], name
        if name != "airflow-init":
            assert service["user"] == reference["user"], name


def test_execution_api_url_names_the_api_server_service():
    services = raw()["services"]
    url = urlsplit(environment_of(services["airflow-worker"])["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "http",
        "airflow-apiserver",
        8080,
        "/execution/",
    )
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_all_services_share_one_generated_airflow_cfg():
    """One airflow.cfg (and so one JWT secret) for every service, written by airflow-init."""
    services = raw()["services"]
    config_path = Path(environment_of(services["airflow-worker"])["AIRFLOW_CONFIG"])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["airflow-worker"]["volumes"]}
    assert mounts[str(config_path.parent)] == "airflow-config"
    assert "airflow-config" in raw()["volumes"]
    assert "airflow config list" in services["airflow-init"]["command"][-1]


def test_long_running_services_have_healthchecks_and_wait_for_their_dependencies():
    services = raw()["services"]
    for name, service in services.items():
        if name in {"airflow-init", "airflow-cli"}:
            continue
        assert service["healthcheck"]["test"], name
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
        if name != "airflow-cli":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    for name in ("airflow-apiserver", "airflow-worker", "airflow-triggerer"):  # they call CARTO
        assert services[name]["depends_on"]["carto-emulator"]["condition"] == "service_healthy", name


def test_provider_is_installed_in_the_image_with_airflow_pinned():
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/airflow:3\.3\.2$", dockerfile, re.M)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
    assert '"/tmp/carto-provider[${CARTO_PROVIDER_EXTRAS}]"' in dockerfile
    assert "ARG CARTO_PROVIDER_EXTRAS=emulator,redis" in dockerfile
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"*", "!pyproject.toml", "!README.md", "!carto_provider/"} <= set(ignored)
    init = raw()["services"]["airflow-init"]["command"][-1]
    assert "set -euo pipefail" in init
    assert "airflow providers get airflow-provider-carto" in init  # init fails without the provider


def test_example_dags_are_mounted_and_connection_testing_is_enabled():
    services = raw()["services"]
    assert (
        "./carto_provider/example_dags:/opt/airflow/dags:ro" in services["airflow-dag-processor"]["volumes"]
    )
    assert (REPO / "carto_provider" / "example_dags" / "carto_quickstart.py").exists()
    env = environment_of(services["airflow-apiserver"])
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"


def test_carto_default_points_at_the_emulator_service_by_name(tmp_path):
    config = rendered(tmp_path)
    services = config["services"]
    assert not any("networks" in service for service in services.values())  # one default network
    from carto_provider.cli import build_parser

    command = services["carto-emulator"]["command"]
    assert command[:3] == ["python", "-m", "carto_provider.cli"]
    args = build_parser().parse_args(command[3:])  # the real CLI accepts it
    assert (args.command, args.host, args.port) == ("emulator", "0.0.0.0", EMULATOR_PORT)
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        conn = carto_connection(env)
        for url in (conn["host"], conn["extra"]["auth_url"], conn["extra"]["bigquery_api_endpoint"]):
            assert (urlsplit(url).hostname, urlsplit(url).port) == ("carto-emulator", EMULATOR_PORT), name
        assert env["CARTO_ALLOW_INSECURE_HTTP_HOSTS"] == "carto-emulator", name
        assert env["AIRFLOW__CARTO__TOKEN_CACHE"] == "redis"
        token_redis = urlsplit(env["AIRFLOW__CARTO__TOKEN_CACHE_REDIS_URL"])
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert token_redis.hostname == broker.hostname == "redis"
        assert token_redis.path != broker.path  # tokens kept out of the Celery broker's database


def test_env_example_switches_to_a_real_carto_account(tmp_path, monkeypatch):
    from airflow.models.connection import Connection

    from carto_provider.hooks.carto import CartoConnectionSettings

    env = rendered(tmp_path, env_example_filled_in())["services"]["airflow-worker"]["environment"]
    conn = carto_connection(env)
    assert conn["host"] == "https://gcp-us-east1.api.carto.com"
    assert conn["extra"] == {"auth_url": "https://auth.carto.com", "bigquery_api_endpoint": ""}
    assert env["CARTO_ALLOW_INSECURE_HTTP_HOSTS"] == ""
    for name, value in env.items():
        if name.startswith(("CARTO_", "AIRFLOW__CARTO__")):
            monkeypatch.setenv(name, value)
    settings = CartoConnectionSettings.from_connection(
        Connection.from_json(env["AIRFLOW_CONN_CARTO_DEFAULT"], conn_id="carto_default")
    )
    assert settings.api_base_url == "https://gcp-us-east1.api.carto.com"
    assert settings.bigquery_api_endpoint is None
    assert (settings.client_id, settings.client_secret) == ("your-m2m-client-id", "your-m2m-client-secret")
    assert settings.cache_backend == "redis"


def test_every_env_example_setting_is_used_by_the_compose_file():
    names = re.findall(r"^#? ?([A-Z_]+)=", (REPO / ".env.example").read_text(encoding="utf-8"), re.M)
    compose = COMPOSE.read_text(encoding="utf-8")
    assert names
    for name in names:
        assert "${" + name in compose, name


# ---------------------------------------------------------------------------- the http escape hatch


def test_plain_http_to_a_named_host_needs_the_explicit_escape_hatch(monkeypatch):
    from carto_provider.auth.settings import INSECURE_HTTP_HOSTS_ENV, AuthSettings
    from carto_provider.errors import CredentialsConfigError

    def normalize_base_url(url: str) -> str:
        return AuthSettings.from_environment().check_base_url(url)

    monkeypatch.delenv(INSECURE_HTTP_HOSTS_ENV, raising=False)
    with pytest.raises(CredentialsConfigError, match="CARTO_ALLOW_INSECURE_HTTP_HOSTS"):
        normalize_base_url("http://carto-emulator:8808")

    monkeypatch.setenv(INSECURE_HTTP_HOSTS_ENV, "other-host, Carto-Emulator")
    assert normalize_base_url("http://carto-emulator:8808/") == "http://carto-emulator:8808"
    assert normalize_base_url("http://other-host") == "http://other-host"
    for url in (
        "http://carto-emulator.example.com",
        "http://evil-carto-emulator:8808",
        "http://api.carto.com",
    ):
        with pytest.raises(CredentialsConfigError, match="use https://"):
            normalize_base_url(url)
    with pytest.raises(CredentialsConfigError, match="must not carry"):
        normalize_base_url("http://user:pw@carto-emulator:8808")
    assert normalize_base_url("gcp-us-east1.api.carto.com") == "https://gcp-us-east1.api.carto.com"

    monkeypatch.setenv(INSECURE_HTTP_HOSTS_ENV, " , ")
    with pytest.raises(CredentialsConfigError):
        normalize_base_url("http://carto-emulator:8808")


# ---------------------------------------------------------------------------- for real, without Docker


def private_network_available() -> bool:
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "--net", "--mount", "true"]
    return unshare is not None and subprocess.run(probe, capture_output=True).returncode == 0


def test_rendered_environment_works_with_services_reached_by_name(tmp_path):
    """Three workers, each its own machine (HOME), use the compose environment verbatim: they reach
    carto-emulator:8808 and redis:6379 by name and share one token through Redis."""
    require("redis-server")
    if not private_network_available():
        if os.environ.get("CI"):
            pytest.fail("unshare --net --mount is not permitted here (needs root)")
        pytest.skip("unshare --net --mount is not permitted here (needs root)")
    environment = rendered(tmp_path)["services"]["airflow-worker"]["environment"]
    provider_env = {
        k: v
        for k, v in environment.items()
        if k.startswith(("CARTO_", "AIRFLOW__CARTO__", "AIRFLOW_CONN_CARTO"))
    }
    spec = {"env": provider_env, "workers": 3, "scratch": str(tmp_path)}
    result = subprocess.run(
        ["unshare", "--net", "--mount", "--fork", sys.executable, __file__, "network", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["token_requests"] == 1, report
    assert len(set(report["fingerprints"])) == 1
    assert report["statuses"] == [200, 200, 200]


def network_main(spec: dict[str, Any]) -> None:
    """Inside the private namespaces: loopback up, service names in /etc/hosts, the emulator and Redis
    on the compose ports, then the workers. Prints one JSON report line."""
    from carto_provider.testing.emulator import CartoEmulator
    from carto_provider.testing.redis_server import RedisServer
    from tests.auth.test_redis_cache import last_json, start_together

    scratch = Path(spec["scratch"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = scratch / "hosts"
    hosts.write_text("127.0.0.1 localhost carto-emulator redis\n::1 localhost\n", encoding="utf-8")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    redis_port = urlsplit(spec["env"]["AIRFLOW__CARTO__TOKEN_CACHE_REDIS_URL"]).port or 6379
    with RedisServer("127.0.0.1", redis_port), CartoEmulator("0.0.0.0", EMULATOR_PORT) as carto:
        carto.set_latency("POST /oauth/token", 0.3)
        commands = []
        for i in range(spec["workers"]):
            home = scratch / f"worker-{i}"
            home.mkdir()
            env = {**os.environ, **spec["env"], "HOME": str(home), "AIRFLOW_HOME": str(home / "airflow")}
            commands.append(([sys.executable, __file__, "worker", str(scratch / "go")], env))
        outputs = start_together(commands, scratch / "go")
        reports = [last_json(out) for out, _ in outputs]
        print(
            json.dumps(
                {
                    "token_requests": carto.token_requests(),
                    "fingerprints": [r["fingerprint"] for r in reports],
                    "statuses": [r["status"] for r in reports],
                }
            ),
            flush=True,
        )


def worker_main(go: str) -> None:
    """One Airflow worker: the hook with the compose environment, released by the go file."""
    from carto_provider.auth.tokens import fingerprint
    from carto_provider.hooks.carto import CartoAuthHook
    from tests.auth.test_redis_cache import wait_for_go

    hook = CartoAuthHook()
    wait_for_go(go)
    token = hook.get_access_token()
    status = hook.request("GET", "/v3/connections").status_code
    print(json.dumps({"fingerprint": fingerprint(token), "status": status}), flush=True)


if __name__ == "__main__":
    {"network": lambda: network_main(json.loads(sys.argv[2])), "worker": lambda: worker_main(sys.argv[2])}[
        sys.argv[1]
    ]()


# ---------------------------------------------------------------------------- one place for the settings


def test_the_native_cluster_runs_the_compose_settings(tmp_path):
    """make test-cluster's harness takes the compose environment (env file + compose defaults) and only
    maps the service names to loopback addresses; every Airflow setting of the env file arrives."""
    require("docker-compose")
    from tests.cluster.services import compose_environment, on_loopback, read_env_file

    shared = read_env_file(REPO / "deploy" / "airflow.env")
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert not any("${" in v or v[:1] in {"'", '"'} for v in shared.values())  # env_file: no interpolation
    addresses = {
        "postgres": "127.0.0.1:5001",
        "redis": "127.0.0.1:5002",
        "airflow-apiserver": "127.0.0.1:5003",
        "carto-emulator": "127.0.0.1:5004",
    }
    native = on_loopback(compose_environment(tmp_path), addresses)
    for name, value in shared.items():
        assert name in native, name
        if not any(service in value for service in addresses):
            assert native[name] == value, name
    assert native["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:5001/airflow")
    assert native["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@127.0.0.1:5002/0"
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:5003/execution/"
    assert native["AIRFLOW__CARTO__TOKEN_CACHE_REDIS_URL"] == "redis://127.0.0.1:5002/1"
    assert carto_connection(native)["host"] == "http://127.0.0.1:5004"
    with pytest.raises(ValueError, match="carto-emulator"):
        on_loopback(
            compose_environment(tmp_path), {k: v for k, v in addresses.items() if k != "carto-emulator"}
        )
