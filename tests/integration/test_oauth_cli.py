"""``carto-provider login / status / logout`` as a user runs them (child processes, ``$BROWSER`` opened
by :mod:`webbrowser`), and the README's flow: login, then ``airflow dags test`` with ``auth_type: oauth``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from carto_provider.auth.login.oauth import OAuthClient, login_cache
from carto_provider.testing.browser import LOG_ENV, authorize_redirect, write_browser_script
from tests.conftest import airflow_cli

CLI = str(Path(sys.executable).with_name("carto-provider"))
FREE_PORT_REDIRECT = "http://localhost:0/callback/"


@pytest.fixture
def user_env(carto_emulator, tmp_path: Path) -> dict[str, str]:
    """A user's shell: own HOME, CARTO_AUTH_URL at the emulator, a headless $BROWSER that logs its pages."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CTX_")}
    env.update(
        HOME=str(home),
        CARTO_AUTH_URL=carto_emulator.url,
        BROWSER=str(write_browser_script(tmp_path)),
        **{LOG_ENV: str(tmp_path / "browser.log")},
    )
    return env


def browser_pages(env: dict[str, str]) -> list[str]:
    log = Path(env[LOG_ENV])
    return log.read_text().splitlines() if log.exists() else []


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def cached_token(carto, env: dict[str, str]) -> str:
    path = Path(env["HOME"]) / ".carto-provider" / "token_oauth.json"
    token = login_cache(path).peek(OAuthClient.resolve(auth_url=carto.url).cache_key)
    assert token is not None
    return token.value


def test_login_status_logout(carto_emulator, user_env) -> None:
    login = cli(user_env, "login", "--redirect-uri", FREE_PORT_REDIRECT)
    assert login.returncode == 0, login.stderr
    assert "Logged in to CARTO as analyst@example.com" in login.stdout
    assert browser_pages(user_env) == [f"{carto_emulator.url}/authorize"]
    token = cached_token(carto_emulator, user_env)

    status = cli(user_env, "status")
    assert status.returncode == 0, status.stderr
    assert "analyst@example.com" in status.stdout
    assert f"API base URL: {carto_emulator.url}" in status.stdout
    assert re.search(r"Expires: +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 23 h 59 min\)", status.stdout)
    assert re.search(r"fp=[0-9a-f]{8}", status.stdout)
    for output in (login.stdout, login.stderr, status.stdout, status.stderr):
        assert token not in output and token[-16:] not in output

    logout = cli(user_env, "logout")
    assert logout.returncode == 0 and "Logged out" in logout.stdout
    after = cli(user_env, "status")
    assert after.returncode == 1
    assert "Not logged in" in after.stdout and "carto-provider login" in after.stdout


def test_login_without_browser_reads_the_pasted_address(carto_emulator, user_env) -> None:
    proc = subprocess.Popen(
        [CLI, "login", "--no-browser"],
        env=user_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = None
    while url is None:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        found = re.search(r"http://\S+/authorize\?\S+", line)
        url = found.group(0) if found else None
    out, err = proc.communicate(authorize_redirect(url) + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "Logged in to CARTO as analyst@example.com" in out
    assert browser_pages(user_env) == []
    assert cached_token(carto_emulator, user_env)


def test_login_fails_at_once_when_the_port_is_taken(carto_emulator, user_env) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        result = cli(user_env, "login", "--redirect-uri", f"http://localhost:{port}/callback/")
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert browser_pages(user_env) == []
    assert carto_emulator.calls("*") == 0


@pytest.fixture
def dev_env(user_env) -> dict[str, str]:
    """The README's connection: only ``auth_type: oauth`` (auth URL from $CARTO_AUTH_URL, cache in ~)."""
    conn = {"conn_type": "carto", "extra": {"auth_type": "oauth"}}
    return {**user_env, "AIRFLOW_CONN_CARTO_DEV": json.dumps(conn)}


def run_with_open_stdin(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run with stdin open and empty, as a worker does: anything waiting for input would hang (and time out)."""
    with subprocess.Popen(
        args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        out, _ = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_a_task_process_without_a_login_fails_at_once(carto_emulator, dev_env) -> None:
    code = (
        "from carto_provider.hooks.carto import CartoAuthHook; CartoAuthHook('carto_dev').get_access_token()"
    )
    result = run_with_open_stdin([sys.executable, "-c", code], dev_env)
    assert result.returncode == 1
    assert "LoginRequiredError" in result.stdout and "Run `carto-provider login`" in result.stdout
    assert browser_pages(dev_env) == []
    assert carto_emulator.calls("*") == 0


def test_readme_flow_login_then_airflow_dags_test(airflow_db, carto_emulator, dev_env) -> None:
    login = cli(dev_env, "login", "--redirect-uri", FREE_PORT_REDIRECT)
    assert login.returncode == 0, login.stderr

    result = run_with_open_stdin([airflow_cli(), "dags", "test", "carto_oauth_dev"], dev_env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "connections ['carto_dw']" in result.stdout
    assert re.search(r"state[=:]\s*'?success", result.stdout), result.stdout[-3000:]
    assert cached_token(carto_emulator, dev_env) not in result.stdout
    assert carto_emulator.events("oauth_token") == 1 and carto_emulator.calls("GET /authorize") == 1
