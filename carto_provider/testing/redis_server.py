"""A throwaway ``redis-server`` on loopback, for testing the Redis token cache for real.

>>> with RedisServer(password="s3cret") as server:      # doctest: +SKIP
...     cache = RedisTokenCache(server.url, client_secret, local=TokenCache(path))

It runs Debian's ``redis-server`` binary (``apt-get install redis-server``; ``make system-deps``) on a
free port, in a temporary directory, without persistence (``--save '' --appendonly no``), and stops
it on exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on ``host:port`` (port 0 picks a free one); ``url`` connects to database 0."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, password: str | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.password = password
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]host:port/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and return once it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self._dir = Path(tempfile.mkdtemp(prefix="carto-redis-"))
        args = [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self._dir), "--logfile", str(self._dir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.host}:{self.port}:\n{log}")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
