"""The processes of the native cluster: a supervised process group, a throw-away PostgreSQL, and the
compose file's Airflow environment rendered for loopback.

Every process is started in its own session (its own process group), so stopping it also stops what
it forked (Celery pool processes, task supervisors, uvicorn workers), and a SIGKILL takes the whole
"machine" down at once, as when a worker node dies.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
PG_BIN = Path(os.environ.get("CARTO_CLUSTER_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------ processes


class Service:
    """One long-running command in its own process group, its output in ``log``."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> None:
        self.name, self.argv, self.env, self.log, self.cwd = name, argv, dict(env), log, cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log_offset = 0
        self._stopping: list[psutil.Process] | None = None

    def start(self) -> Service:
        """Start the command (appending to its log)."""
        with self.log.open("ab") as out:
            self.log_offset = out.tell()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _members(self) -> list[psutil.Process]:
        """The leader and every descendant still alive (some may have left the group)."""
        if self.process is None:
            return []
        try:
            leader = psutil.Process(self.process.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the whole process tree at once (a machine lost), and reap it."""
        members = self._members()
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)
        for member in members:
            _signal(member, signal.SIGKILL)
        self._reap(members, timeout=10)

    def terminate(self) -> None:
        """Ask the group to stop (SIGTERM) without waiting; :meth:`stop` then waits for it."""
        if self.process is not None and self._stopping is None:
            self._stopping = self._members()
            _signal_group(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the group (a graceful stop), then SIGKILL whatever is left after ``timeout``."""
        if self.process is None:
            return
        self.terminate()
        members, self._stopping = self._stopping or [], None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        _gone, alive = psutil.wait_procs(members, timeout=5)
        for member in alive:
            _signal(member, signal.SIGKILL)
        _signal_group(self.process.pid, signal.SIGKILL)
        self._reap(members, timeout=10)

    def _reap(self, members: list[psutil.Process], timeout: float) -> None:
        psutil.wait_procs(members, timeout=timeout)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
            self.process = None

    def output(self) -> str:
        """What the command wrote since its last start."""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        """The end of the log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(process: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(sig)


# ------------------------------------------------------------------------------------ PostgreSQL


class Postgres:
    """A throw-away PostgreSQL cluster (Debian's binaries) in ``directory``, on 127.0.0.1:``port``.

    PostgreSQL refuses to run as root: when the harness is root, every command runs as the package's
    ``postgres`` user, which owns ``directory``. The cluster has the role ``airflow`` (trust auth on
    loopback only) and the database ``airflow``, like the compose file's ``postgres`` service.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")

    def start(self) -> Postgres:
        """initdb, start, and create the ``airflow`` database."""
        self.directory.mkdir(mode=0o700)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "airflow",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        log = self.directory / "postgres.log"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        try:
            conn.autocommit = True
            conn.cursor().execute("CREATE DATABASE airflow")
        finally:
            conn.close()
        return self

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away)."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except RuntimeError:
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                _signal_group(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------ settings


def compose_environment(scratch: Path, service: str = "airflow-worker") -> dict[str, str]:
    """The environment docker-compose gives ``service`` with an empty .env (``docker-compose config``,
    no engine needed): the shared env file plus the compose file's own defaults."""
    binary = shutil.which("docker-compose")
    if binary is None:
        raise FileNotFoundError("docker-compose is not installed (make system-deps)")
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CARTO_", "_AIRFLOW", "_PIP"))
    }
    empty = scratch / "empty.env"
    empty.touch()
    command = [binary, "--project-directory", str(REPO), "--env-file", str(empty), "-f", str(COMPOSE_FILE)]
    result = subprocess.run([*command, "config"], capture_output=True, text=True, env=clean, timeout=120)
    if result.returncode:
        raise RuntimeError(f"docker-compose config failed: {result.stderr}")
    environment = yaml.safe_load(result.stdout)["services"][service]["environment"]
    return {name: str(value) for name, value in environment.items()}


def on_loopback(environment: Mapping[str, str], addresses: Mapping[str, str]) -> dict[str, str]:
    """``environment`` with every compose service name (``host[:port]`` after ``//`` or ``@``) replaced
    by the loopback address in ``addresses``; raises if any service name is left."""
    result = {}
    for name, value in environment.items():
        for service, address in addresses.items():
            value = re.sub(rf"(?<=[/@]){re.escape(service)}(:\d+)?(?=[/\"]|$)", address, value)
        result[name] = value
    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    for name, value in result.items():
        for service in services:
            if re.search(rf"[/@]{re.escape(service)}(?=[:/\"]|$)", value):
                raise ValueError(f"{name} still names the compose service {service!r}")
    return result


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped), as compose reads it."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values
