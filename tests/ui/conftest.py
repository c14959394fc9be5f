"""Fixtures of the browser test: a real ``airflow api-server`` and Debian's Chromium driven by Playwright.

Nothing is downloaded: Playwright drives ``/usr/bin/chromium`` (``make test-ui`` installs the Debian
package), and the API server runs on a free loopback port with the Simple auth manager (everyone is
admin). Every wait is bounded; the server is stopped at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from carto_provider.testing import CartoEmulator
from tests.conftest import REPO, airflow_cli

CHROMIUM = Path(os.environ.get("CARTO_UI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 180.0
#: Screenshots land here (git-ignored); CI can keep them as artifacts.
ARTIFACTS = Path(os.environ.get("CARTO_UI_ARTIFACTS", REPO / "build" / "ui"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ui_emulator() -> Iterator[CartoEmulator]:
    """The CARTO emulator the API server's Test button talks to (loopback, this process)."""
    with CartoEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airflow api-server`` on a free loopback port; yields its base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [airflow_cli(), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its workers stop with it
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base_url, log_path)
        yield base_url
    finally:
        stop(server)


def wait_until_healthy(server: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"airflow api-server exited with {server.returncode}:\n{log_path.read_text()[-5000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(
        f"airflow api-server not healthy after {SERVER_START_TIMEOUT} s:\n{log_path.read_text()[-5000:]}"
    )


def stop(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium from Debian, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test-ui`, which installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, api_server: str):
    """A fresh page at a readable size; every wait bounded by 30 s."""
    context = browser.new_context(viewport={"width": 1100, "height": 1500}, base_url=api_server)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
