"""A headless "browser" for login tests: it loads the emulator's authorize page and follows its
redirect to the loopback callback over real HTTP, as a user's browser does after approving a login.

* In process: ``LoginUI(open_url=HeadlessBrowser())`` (``tamper=`` rewrites the redirect first, e.g.
  to forge its ``state``).
* As ``$BROWSER`` for :mod:`webbrowser` in a child process (``carto-provider login``):
  ``BROWSER=$(python -c 'from carto_provider.testing.browser import write_browser_script as w;
  print(w("/tmp"))')``. ``$CARTO_TEST_BROWSER_LOG``, when set, names a file that gets one line per
  page opened.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
LOG_ENV = "CARTO_TEST_BROWSER_LOG"
TIMEOUT = 10.0


def authorize_redirect(url: str) -> str:
    """Where the authorize page sends the browser (the ``Location`` of its answer)."""
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    if response.status_code not in REDIRECT_STATUSES:
        status, body = response.status_code, response.text[:200]
        raise AssertionError(f"the authorize page answered HTTP {status}: {body}")
    return response.headers["Location"]


class HeadlessBrowser:
    """An ``open_url`` for :class:`~carto_provider.auth.login.flow.LoginUI` that follows the login.

    ``tamper`` rewrites the redirect address before it is loaded; ``visit_first`` paths (e.g.
    ``/favicon.ico``) are loaded on the callback's host before the callback itself. ``opened`` lists
    the URLs opened and ``pages`` the callback answers (status, body).
    """

    def __init__(
        self, *, tamper: Callable[[str], str] | None = None, visit_first: Sequence[str] = ()
    ) -> None:
        self.tamper = tamper
        self.visit_first = tuple(visit_first)
        self.opened: list[str] = []
        self.pages: list[tuple[int, str]] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        location = authorize_redirect(url)
        if self.tamper is not None:
            location = self.tamper(location)
        origin = location.split("/", 3)[:3]
        for path in self.visit_first:
            page = requests.get("/".join(origin) + path, allow_redirects=False, timeout=TIMEOUT)
            self.pages.append((page.status_code, page.text))
        page = requests.get(location, allow_redirects=False, timeout=TIMEOUT)
        self.pages.append((page.status_code, page.text))
        return True


def write_browser_script(directory: str | os.PathLike[str]) -> Path:
    """An executable that runs this module on its URL argument, for ``$BROWSER`` (which must name an
    executable without arguments); returns its path."""
    path = Path(directory) / "carto-headless-browser"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m carto_provider.testing.browser "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Open each URL like a browser. Exits 0 whenever it could try, as a browser launcher does."""
    for url in argv if argv is not None else sys.argv[1:]:
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(url.split("?", 1)[0] + "\n")
        try:
            HeadlessBrowser()(url)
        except (requests.RequestException, AssertionError, KeyError) as exc:
            print(f"headless browser: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
