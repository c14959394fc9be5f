"""Item 7: carto-auth's documented examples and errors, run against both libraries side by side.

``tests/auth/test_carto_auth_contract.py`` runs the same examples against this package only, with
exact assertions. Here each example runs in a fresh process per library, with its own ``HOME``,
against the emulator (carto-auth's ``https://auth.carto.com`` redirected to it as in every benchmark),
so the table shows what a script written for carto-auth 0.2.0 sees with either library installed.

``python -m benchmarks.contract LIBRARY EXAMPLE CREDENTIALS_FILE EMULATOR_URL WORKDIR`` is one
example in one process; it prints one JSON line, ``{"outcome": ...}``: ``ok`` or
``raises <ExceptionType>`` (the classes carto-auth documents it raises, checked with ``isinstance``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Context, Section, json_from_child, table
from benchmarks.libs import CARTO_AUTH, LABELS, LIBRARIES, PROVIDER, library_api


@dataclass(frozen=True)
class Example:
    """One documented behaviour: what carto-auth's docs promise, and the outcome that means it holds."""

    title: str
    promise: str
    expected: str
    token_requests: int | None = None  # requests the emulator must see, when the promise counts them
    fault: tuple[str, int] | None = None  # (route, status) the emulator answers once


EXAMPLES: dict[str, Example] = {
    "m2m": Example(
        "`CartoAuth.from_m2m(file)`, then `get_access_token()`, `get_api_base_url()`, "
        "`get_carto_dw_credentials()`",
        "a token, the file's base URL, (project, token)",
        "ok",
        token_requests=1,
    ),
    "pydeck": Example(
        "pydeck-carto 0.1.0 `get_layer_credentials(carto_auth)`",
        "`{apiVersion, apiBaseUrl, accessToken}`",
        "ok",
    ),
    "given_token": Example(
        "`CartoAuth('m2m', api_base_url=..., access_token=..., expiration=...)`",
        "uses the given token, no request",
        "ok",
        token_requests=0,
    ),
    "unknown_mode": Example("`CartoAuth('password')`", "`CredentialsError`", "raises CredentialsError"),
    "missing_file": Example(
        "`from_m2m` on a missing file", "`FileNotFoundError`", "raises FileNotFoundError"
    ),
    "malformed_json": Example(
        "`from_m2m` on malformed JSON", "`json.JSONDecodeError`", "raises JSONDecodeError"
    ),
    "missing_field": Example(
        "`from_m2m` on a file without `client_secret`", "`AttributeError`", "raises AttributeError"
    ),
    "empty_field": Example(
        "`from_m2m` on a file with an empty `client_id`", "`ValueError`", "raises ValueError"
    ),
    "wrong_secret": Example(
        "`from_m2m` with a wrong client secret",
        "`CredentialsError` from `from_m2m`",
        "raises CredentialsError",
    ),
    "dw_denied": Example(
        "`get_carto_dw_credentials()` answered 403",
        "`CredentialsError`",
        "raises CredentialsError",
        fault=("GET /v3/connections/carto-dw/token", 403),
    ),
    "cached": Example("`from_m2m(file)` twice, default cache", "one token request", "ok", token_requests=1),
    "explicit_cache": Example(
        "`from_m2m(file, cache_filepath=...)` twice", "one token request", "ok", token_requests=1
    ),
    "no_cache": Example(
        "`from_m2m(file, use_cache=False)` twice", "a token per object", "ok", token_requests=2
    ),
}


# --------------------------------------------------------------------------- the measuring process

#: Rounds of the coexistence check (one call of each library per round).
TURNS = 3


def write_variant(workdir: Path, credentials: str, **changes: Any) -> str:
    """A copy of the credentials file with ``changes`` (a value of None drops the field)."""
    data = json.loads(Path(credentials).read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = workdir / "variant.json"
    path.write_text(json.dumps(data))
    return str(path)


def run_example(name: str, carto_auth_class: Any, credentials: str, url: str, workdir: Path) -> None:
    """Run one example with ``carto_auth_class`` (a library's ``CartoAuth``); return normally when it
    did what it should, raise what the library raised."""
    steps: dict[str, Callable[[], Any]] = {
        "m2m": lambda: check_m2m(carto_auth_class.from_m2m(credentials), url),
        "pydeck": lambda: check_pydeck(carto_auth_class.from_m2m(credentials), url),
        "given_token": lambda: expect(
            carto_auth_class(
                "m2m", api_base_url=url, access_token="given", expiration=time.time() + 3600
            ).get_access_token()
            == "given"
        ),
        "unknown_mode": lambda: carto_auth_class("password"),
        "missing_file": lambda: carto_auth_class.from_m2m(str(workdir / "nope.json")),
        "malformed_json": lambda: carto_auth_class.from_m2m(malformed(workdir)),
        "missing_field": lambda: carto_auth_class.from_m2m(
            write_variant(workdir, credentials, client_secret=None)
        ),
        "empty_field": lambda: carto_auth_class.from_m2m(write_variant(workdir, credentials, client_id="")),
        "wrong_secret": lambda: carto_auth_class.from_m2m(
            write_variant(workdir, credentials, client_secret="wrong")
        ),
        "dw_denied": lambda: carto_auth_class.from_m2m(credentials).get_carto_dw_credentials(),
        "cached": lambda: twice(lambda: carto_auth_class.from_m2m(credentials)),
        "explicit_cache": lambda: twice(
            lambda: carto_auth_class.from_m2m(credentials, cache_filepath=str(workdir / "t.json"))
        ),
        "no_cache": lambda: twice(lambda: carto_auth_class.from_m2m(credentials, use_cache=False)),
    }
    steps[name]()


def expect(condition: bool) -> None:
    if not condition:
        raise AssertionError("the documented result did not come back")


def check_m2m(auth: Any, url: str) -> None:
    token = auth.get_access_token()
    expect(token.count(".") == 2 and auth.get_api_base_url() == url)
    project, dw_token = auth.get_carto_dw_credentials()
    expect(bool(project and dw_token))


def check_pydeck(auth: Any, url: str) -> None:
    layer = {  # pydeck_carto/layer.py get_layer_credentials, verbatim logic
        "apiVersion": "v3",
        "apiBaseUrl": auth.get_api_base_url(),
        "accessToken": auth.get_access_token(),
    }
    expect(layer["apiBaseUrl"] == url and bool(layer["accessToken"]))


def twice(build: Callable[[], Any]) -> None:
    for _ in range(2):
        expect(bool(build().get_access_token()))


def malformed(workdir: Path) -> str:
    path = workdir / "malformed.json"
    path.write_text('{"client_id": "x", ')
    return str(path)


def take_turns(credentials: str, url: str, rounds: int = TURNS) -> None:
    """Both libraries installed and used in turns in one ``HOME``: each must keep its own token."""
    provider_class, _ = library_api(PROVIDER, url)
    seed_class, _ = library_api(CARTO_AUTH, url)
    for _ in range(rounds):
        expect(bool(seed_class.from_m2m(credentials).get_access_token()))
        expect(bool(provider_class.from_m2m(credentials).get_access_token()))


def outcome_of(name: str, library: str, credentials: str, url: str, workdir: Path) -> str:
    """``ok``, or ``raises X``: X is the class the example expects when the exception is one, else the
    first documented class it is, else its own class."""
    if name == "turns":
        take_turns(credentials, url)
        return "ok"
    carto_auth_class, credentials_error = library_api(library, url)
    documented = (FileNotFoundError, json.JSONDecodeError, AttributeError, ValueError, credentials_error)
    try:
        run_example(name, carto_auth_class, credentials, url, workdir)
    except documented as exc:
        expected = EXAMPLES[name].expected.removeprefix("raises ")
        matches = [cls.__name__ for cls in documented if isinstance(exc, cls)]
        return f"raises {expected if expected in matches else matches[0]}"
    except Exception as exc:  # an undocumented outcome: shown as it is
        return f"raises {type(exc).__name__}"
    return "ok"


# --------------------------------------------------------------------------- the harness


def contract(ctx: Context) -> Section:
    """Every example in a fresh process per library; tabulate outcomes and token requests."""
    rows, passed = [], dict.fromkeys(LIBRARIES, 0)
    for name, example in EXAMPLES.items():
        cells = []
        for library in LIBRARIES:
            outcome, requests = run_in_process(ctx, name, library, example)
            holds = outcome == example.expected and example.token_requests in (None, requests)
            passed[library] += holds
            counted = (
                f", {requests} token request{'s' * (requests != 1)}"
                if example.token_requests is not None
                else ""
            )
            cells.append(f"{outcome}{counted} {'✓' if holds else '**✗**'}")
        rows.append((example.title, example.promise, *cells))
    total = len(EXAMPLES)
    _, turns = run_in_process(ctx, "turns", "both", Example("", "", "ok"))
    return Section(
        7,
        "carto-auth's documented examples, run against both libraries",
        "Each example of carto-auth 0.2.0's README, docstrings and CARTO's pydeck-carto page runs in a "
        "fresh process per library, with its own `HOME` (empty caches), against the emulator. ✓ means "
        "the outcome carto-auth documents; token requests are counted by the emulator. "
        "`tests/auth/test_carto_auth_contract.py` runs the same examples against this package in "
        "`make test`.",
        table(["Example", "carto-auth documents", LABELS[CARTO_AUTH], LABELS[PROVIDER]], rows),
        environment=ctx.environment(),
        notes=[
            f"Both libraries installed and used in turns in one `HOME` (carto-auth, then this package, "
            f"{TURNS} rounds, a new `CartoAuth` each time): **{turns} token requests** in all (2 means "
            "each library kept its own cached token; this package never writes carto-auth's file).",
        ],
        headline=[
            f"carto-auth's {total} documented examples and errors hold for **{passed[PROVIDER]} of "
            f"{total}** with airflow-provider-carto's `CartoAuth` and {passed[CARTO_AUTH]} of {total} "
            f"with carto-auth 0.2.0 itself, run side by side; used in turns in one `HOME`, the two "
            f"libraries made {turns} token requests in {2 * TURNS} calls.",
        ],
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def run_in_process(ctx: Context, name: str, library: str, example: Example) -> tuple[str, int]:
    """One example in one fresh process: its outcome and the token requests the emulator saw."""
    home = ctx.home("contract", library, name)
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    if example.fault is not None:
        ctx.emulator.add_fault(example.fault[0], example.fault[1], times=1)
    before = ctx.emulator.token_requests()
    args = (library, name, str(ctx.credentials), ctx.emulator.url, str(workdir))
    what = f"{LABELS.get(library, library)} {name!r}"
    outcome = json_from_child("benchmarks.contract", *args, home=home, what=what, timeout=300)["outcome"]
    return outcome, ctx.emulator.token_requests() - before


if __name__ == "__main__":
    library_arg, name_arg, credentials_arg, url_arg, workdir_arg = sys.argv[1:6]
    result = outcome_of(name_arg, library_arg, credentials_arg, url_arg, Path(workdir_arg))
    print(json.dumps({"outcome": result}), flush=True)
