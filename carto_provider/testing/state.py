"""What the CARTO emulator knows: clients, issued tokens, request counts and scripted faults."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from carto_provider.testing.quirks import Quirks

T = TypeVar("T")

DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret-0123456789"
DEFAULT_PROJECT_ID = "carto-dw-ac-emulator"


@dataclass
class Fault:
    """A scripted answer for requests matching ``pattern`` (``"METHOD /path"``, fnmatch wildcards).

    ``status`` None means "answer normally after ``delay`` seconds" (use it to simulate latency
    spikes or, with a long delay, a server that never answers).
    """

    pattern: str
    status: int | None = None
    times: int = 1
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class IssuedToken:
    """A token the emulator handed out; an API access token (``kind`` ``"api"``) has its id,
    ``grants`` (``(connection_name, source)`` pairs), ``allowed_apis`` and ``referers``."""

    kind: str  # "m2m", "oauth", "dw" or "api"
    subject: str  # client id (m2m) or user id (oauth); an API access token: who created it
    expires_at: float
    token_id: str = ""
    grants: tuple[tuple[str, str], ...] = ()
    allowed_apis: frozenset[str] = frozenset()
    referers: tuple[str, ...] = ()
    created_at: float = 0.0

    def grants_connection(self, connection: str) -> bool:
        """Whether an API access token has a grant on ``connection`` (any source)."""
        return any(name == connection for name, _ in self.grants)


class EmulatorState:
    """Thread-safe state shared by the emulator's routes and by tests (through ``CartoEmulator``)."""

    def __init__(
        self,
        *,
        token_lifetime: int = 86400,
        dw_token_lifetime: int = 3600,
        project_id: str = DEFAULT_PROJECT_ID,
        quirks: Quirks | None = None,
    ) -> None:
        self.lock = threading.RLock()
        #: The unpleasant modes in force (:mod:`carto_provider.testing.quirks`).
        self.quirks = quirks if quirks is not None else Quirks.from_env()
        self.signing_key = secrets.token_bytes(32)
        self.token_lifetime = token_lifetime
        self.dw_token_lifetime = dw_token_lifetime
        self.project_id = project_id
        self.clients: dict[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.tokens: dict[str, IssuedToken] = {}
        self.calls: Counter[str] = Counter()  # "METHOD /raw/path" -> count (faulted calls included)
        self.events: Counter[tuple[str, str]] = Counter()  # (event, subject) -> count, e.g. ("m2m_token", id)
        self.faults: list[Fault] = []
        self.last_query: dict[str, str] = {}  # "METHOD /path" -> the query string it last had
        self.latency: dict[str, float] = {}  # pattern -> seconds added to every matching request
        self.extensions: dict[str, Any] = {}  # per-feature state of later routers (warehouse, jobs...)

    def extension(self, name: str, factory: Callable[[], T]) -> T:
        """The per-feature state called ``name``, created by ``factory`` on first use."""
        with self.lock:
            if name not in self.extensions:
                self.extensions[name] = factory()
            value: T = self.extensions[name]
            return value

    # --------------------------------------------------------------- counting
    def count_call(self, method: str, path: str) -> None:
        with self.lock:
            self.calls[f"{method} {path}"] += 1

    def record(self, event: str, subject: str = "") -> None:
        with self.lock:
            self.events[(event, subject)] += 1

    def calls_matching(self, pattern: str) -> int:
        with self.lock:
            return sum(n for key, n in self.calls.items() if fnmatch.fnmatchcase(key, pattern))

    # --------------------------------------------------------------- faults
    def take_fault(self, method: str, path: str) -> Fault | None:
        key = f"{method} {path}"
        with self.lock:
            for fault in self.faults:
                if fnmatch.fnmatchcase(key, fault.pattern):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def latency_for(self, method: str, path: str) -> float:
        key = f"{method} {path}"
        with self.lock:
            return sum(s for pattern, s in self.latency.items() if fnmatch.fnmatchcase(key, pattern))

    # --------------------------------------------------------------- tokens
    def issue_token(
        self, kind: str, subject: str, lifetime: int, claims: dict[str, Any] | None = None
    ) -> str:
        """A JWT-shaped token (HS256 with the emulator's key) recorded as issued."""
        now = int(time.time())
        payload = {
            "iss": "carto-emulator",
            "sub": subject,
            "aud": "carto-cloud-native-api",
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
            **(claims or {}),
        }
        token = self._sign({"alg": "HS256", "typ": "JWT"}, payload)
        with self.lock:
            self.tokens[token] = IssuedToken(kind, subject, time.time() + lifetime)
        return token

    def issue_api_token(
        self,
        subject: str,
        *,
        grants: tuple[tuple[str, str], ...],
        allowed_apis: frozenset[str],
        referers: tuple[str, ...] = (),
        expires_at: float | None = None,
    ) -> tuple[str, IssuedToken]:
        """An API access token (a JWT, as CARTO's are) with its grants; never expires without
        ``expires_at`` (epoch seconds), as CARTO's docs say."""
        now = time.time()
        claims = {"exp": int(expires_at)} if expires_at else {}
        payload = {"iss": "carto-emulator", "sub": subject, "jti": secrets.token_hex(8), **claims}
        token = self._sign({"alg": "HS256", "typ": "JWT"}, payload)
        issued = IssuedToken(
            "api",
            subject,
            expires_at or float("inf"),
            token_id=f"tok_{secrets.token_hex(8)}",
            grants=grants,
            allowed_apis=allowed_apis,
            referers=referers,
            created_at=now,
        )
        with self.lock:
            self.tokens[token] = issued
        return token, issued

    def issue_dw_token(self) -> str:
        token = "ya29.emulator-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = IssuedToken("dw", self.project_id, time.time() + self.dw_token_lifetime)
        return token

    def check_token(self, token: str | None, kinds: tuple[str, ...] = ("m2m", "oauth")) -> IssuedToken | None:
        """The issued token if it is known, of one of ``kinds`` and unexpired; else None."""
        if not token:
            return None
        with self.lock:
            issued = self.tokens.get(token)
        if issued is None or issued.kind not in kinds or issued.expires_at <= time.time():
            return None
        return issued

    def revoke(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    def _sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        def b64(data: dict[str, Any]) -> str:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        signing_input = f"{b64(header)}.{b64(payload)}"
        sig = hmac.new(self.signing_key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
