"""Reading an answer without trusting the server: a byte budget and a total deadline per attempt.

Every call of :mod:`carto_provider.api.transport` reads its answer here, streamed:

* **Byte budget**: the body is counted *after* decoding (gzip and deflate inflated here, 64 KiB at a
  time, whatever one network read holds), piece by piece, and refused with
  :class:`ResponseTooLargeError` as soon as the count passes the budget. A 150 KB gzip answer
  that inflates to 150 MiB therefore costs about the budget, not 150 MiB. Budgets:
  :data:`DEFAULT_MAX_BODY` for API answers (a ``/query`` answer can
  be large; hooks take ``max_response_bytes``), :data:`ERROR_BODY_BYTES` for error answers and
  ``auth.untrusted.MAX_BODY_BYTES`` (1 MiB) for the auth flow's answers.
* **Total deadline**: connect, sending and every read of one attempt share one deadline
  (:func:`check_timeout`: ``connect + read`` by default, or the third element of a
  ``(connect, read, total)`` timeout), so a server trickling a byte every few hundred milliseconds
  cannot hold a task or the triggerer for longer than that. Async calls run under
  ``anyio.fail_after``; sync calls get every socket operation's timeout capped to the time left
  (:class:`DeadlineBackend`, installed into httpx's connection pools), which also covers a server
  trickling its *headers*.

Timeouts are checked where they are given (:func:`check_timeout`): ``nan``, ``inf``, zero or a
negative number is a :class:`~carto_provider.errors.ConfigurationError`, not a wait for ever.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import math
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from carto_provider.api.responses import redact_url
from carto_provider.api.untrusted import MAX_BODY_BYTES
from carto_provider.errors import ConfigurationError, ResponseTooLargeError

if TYPE_CHECKING:
    import httpx

#: Largest decoded API answer read by default (256 MiB): above any ``/query`` answer a worker should
#: hold (CARTO returns at most 200,000 rows); hooks take ``max_response_bytes`` to change it.
DEFAULT_MAX_BODY = 256 * 1024 * 1024
#: Largest error answer read (an error body is a few hundred bytes; the message quotes 300 characters):
#: the auth flow's limit, one number for every small answer.
ERROR_BODY_BYTES = MAX_BODY_BYTES
#: Longest the size check lets an answer through before counting (the chunk httpx decodes at once).
_CHUNK = 64 * 1024

Timeout = float | tuple[float, float] | tuple[float, float, float]

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("carto_deadline", default=None)


def _positive(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a number of seconds, not {value!r}.") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ConfigurationError(f"{what} must be a finite number of seconds above 0, not {value!r}.")
    return number


def check_timeout(timeout: Any, what: str = "timeout") -> tuple[float, float, float]:
    """``(connect, read, total)`` of a timeout given as seconds, ``(connect, read)`` or
    ``(connect, read, total)``; refuses anything not finite and above 0."""
    if isinstance(timeout, list | tuple):
        if len(timeout) not in (2, 3):
            raise ConfigurationError(f"{what} must be seconds, (connect, read) or (connect, read, total).")
        connect, read = _positive(timeout[0], what), _positive(timeout[1], what)
        total = _positive(timeout[2], what) if len(timeout) == 3 else connect + read
        return connect, read, total
    seconds = _positive(timeout, what)
    return seconds, seconds, 2 * seconds


def _too_large(response: httpx.Response, budget: int) -> ResponseTooLargeError:
    url = redact_url(str(response.request.url))
    return ResponseTooLargeError(
        f"CARTO answered {response.request.method} {url} (HTTP {response.status_code}) with more than "
        f"{budget:,} bytes once decoded; reading stopped there. Ask for less (a SQL job writing to a "
        "table, a LIMIT) or raise the hook's max_response_bytes.",
        status=response.status_code,
        url=url,
    )


def budget_for(response: httpx.Response, max_body: int) -> int:
    """The budget of this answer: an error answer is read up to :data:`ERROR_BODY_BYTES` only."""
    return max_body if response.status_code < 400 else min(max_body, ERROR_BODY_BYTES)


class _Collector:
    """Counts decoded chunks into one buffer; raises once the budget is passed."""

    def __init__(self, response: httpx.Response, budget: int) -> None:
        self.response, self.budget, self.size = response, budget, 0
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > budget and "Content-Encoding" not in response.headers:
            raise _too_large(response, budget)  # said so up front: do not read any of it
        self.buffer = io.BytesIO()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.budget:
            raise _too_large(self.response, self.budget)
        self.buffer.write(chunk)

    def finish(self) -> None:
        # What httpx's Response.read() does with the chunks it reads: later .content/.json() use it.
        self.response._content = self.buffer.getvalue()
        self.buffer = io.BytesIO()


#: The encodings inflated here, at most :data:`_CHUNK` bytes at a time (``Accept-Encoding`` asks for
#: these only); httpx's own decoders inflate a whole network read at once (64 KiB of a gzip bomb is
#: 64 MiB), so they serve only an encoding a server sends unasked.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPT_ENCODING = "gzip, deflate"


class _Inflater:
    """Inflates one gzip or deflate body in pieces of at most :data:`_CHUNK` decoded bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding, self.wbits = encoding, _WBITS[encoding]
        self.inflater = zlib.decompressobj(self.wbits)
        self.started = False

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``raw``; an unusable body is httpx's ``DecodingError``."""
        import httpx

        data = raw
        try:
            while data:
                try:
                    piece = self.inflater.decompress(data, _CHUNK)
                except zlib.error:
                    if self.started or self.wbits != zlib.MAX_WBITS:
                        raise
                    self.inflater, self.wbits = zlib.decompressobj(-zlib.MAX_WBITS), -zlib.MAX_WBITS
                    continue  # "deflate" sent without its zlib header, as some servers do
                self.started = True
                data = self.inflater.unconsumed_tail
                if piece:
                    yield piece
        except zlib.error as exc:
            raise httpx.DecodingError(f"the answer's {self.encoding} stream is damaged: {exc}") from None

    def flush(self) -> bytes:
        """What is left at the end of the body."""
        return self.inflater.flush()


def _inflater(response: httpx.Response) -> _Inflater | None:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    return _Inflater(encoding) if encoding in _WBITS else None


def read_bounded(response: httpx.Response, max_body: int) -> httpx.Response:
    """Read a streamed sync answer within its budget (the deadline is the socket's, see the module doc)."""
    collector = _Collector(response, budget_for(response, max_body))
    inflater = _inflater(response)
    if inflater is None:
        for chunk in response.iter_bytes(_CHUNK):
            collector.add(chunk)
    else:
        for raw in response.iter_raw(_CHUNK):
            for piece in inflater.feed(raw):
                collector.add(piece)
        collector.add(inflater.flush())
    collector.finish()
    return response


async def aread_bounded(response: httpx.Response, max_body: int) -> httpx.Response:
    """Read a streamed async answer within its budget."""
    collector = _Collector(response, budget_for(response, max_body))
    inflater = _inflater(response)
    if inflater is None:
        chunks: AsyncIterator[bytes] = response.aiter_bytes(_CHUNK)
        async for chunk in chunks:
            collector.add(chunk)
    else:
        raws: AsyncIterator[bytes] = response.aiter_raw(_CHUNK)
        async for raw in raws:
            for piece in inflater.feed(raw):
                collector.add(piece)
        collector.add(inflater.flush())
    collector.finish()
    return response


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every socket operation of this thread's httpx calls inside shares one deadline ``seconds`` away."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _capped(timeout: float | None, error: type[Exception]) -> float | None:
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the call's total deadline passed")
    return left if timeout is None else min(timeout, left)


def _stream_class() -> type:
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        """A socket stream whose every read and write waits no longer than the deadline allows."""

        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return bytes(self._inner.read(max_bytes, _capped(timeout, httpcore.ReadTimeout)))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, _capped(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: Any = None) -> Any:
            capped = _capped(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, capped))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    return DeadlineStream


class DeadlineBackend:
    """httpcore's network backend with every timeout capped to the current :func:`deadline`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._stream = _stream_class()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **options: Any) -> Any:
        """A TCP connection set up within the deadline, whose reads and writes keep to it."""
        import httpcore

        capped = _capped(timeout, httpcore.ConnectTimeout)
        return self._stream(self._inner.connect_tcp(host, port, capped, **options))

    def connect_unix_socket(self, path: str, timeout: float | None = None, **options: Any) -> Any:
        """A Unix socket connection (httpx's ``uds=``) under the same deadline."""
        import httpcore

        capped = _capped(timeout, httpcore.ConnectTimeout)
        return self._stream(self._inner.connect_unix_socket(path, capped, **options))

    def sleep(self, seconds: float) -> None:
        """The inner backend's sleep."""
        self._inner.sleep(seconds)


def install_deadlines(pools: Iterable[Any]) -> None:
    """Make httpx's sync connection pools keep to :func:`deadline` (their network backend wrapped)."""
    for transport in pools:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            raise RuntimeError("httpx's transport has no connection pool to bound: httpx changed")
        if not isinstance(backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
