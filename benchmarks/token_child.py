"""One task process of a burst: get a CARTO token at an instant shared with its siblings.

``python -m benchmarks.token_child LIBRARY CREDENTIALS_FILE EMULATOR_URL``

Protocol with the harness, one line each way on stdin/stdout: once its imports are done the process
prints ``ready``; the harness answers with the start instant (epoch seconds); the process sleeps
until then, builds the library's ``CartoAuth`` from the credentials file, calls
``get_access_token()`` and prints one JSON line: ``ok``, ``error`` (exception type), ``seconds``
from the start instant, and ``cache_writes``, the number of times this process wrote the cache file
(opened it for writing, or renamed a file onto it), counted with a Python audit hook.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.libs import CACHE_FILES, auth_factory

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC


class CacheWriteCounter:
    """Counts writes to one file by this process (audit events ``open`` and ``os.rename``)."""

    def __init__(self, path: Path) -> None:
        self.target = os.path.abspath(path.expanduser())
        self.count = 0
        self.enabled = False
        sys.addaudithook(self._hook)

    def _is_target(self, path: Any) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            return os.path.abspath(os.fsdecode(path)) == self.target
        except (TypeError, ValueError):
            return False

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.enabled:
            return
        if event == "open" and len(args) >= 3 and self._is_target(args[0]):
            mode, flags = args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            self.count += bool(writing)
        elif event == "os.rename" and len(args) >= 2 and self._is_target(args[1]):
            self.count += 1


def main(argv: list[str]) -> int:
    library, credentials, emulator_url = argv
    counter = CacheWriteCounter(Path("~") / CACHE_FILES[library])
    build = auth_factory(library, credentials, emulator_url)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.time()))
    counter.enabled = True
    result: dict[str, Any] = {"ok": True, "error": None}
    try:
        token = build().get_access_token()
        if not token:
            result.update(ok=False, error="EmptyToken")
    except Exception as exc:  # what the library does under contention is the measurement
        result.update(ok=False, error=type(exc).__name__)
    result["seconds"] = time.time() - start
    counter.enabled = False
    result["cache_writes"] = counter.count
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
