"""``CartoAuth``: ``carto-auth``'s public API, exactly, on a safe shared token cache. No Airflow here."""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from carto_provider.api.bounded import DEFAULT_MAX_BODY
from carto_provider.api.responses import response_body
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import CLIENT_PARAMS, DEFAULT_TIMEOUT, AsyncTransport, Transport
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.dw.client import (
    DW_TOKEN_ASSUMED_LIFETIME,
    DW_TOKEN_PATH,
    build_dw_client,
    parse_dw_token_response,
)
from carto_provider.auth.m2m import m2m_cache_key, request_client_credentials_token
from carto_provider.auth.settings import M2M_CACHE_FILENAME, AuthSettings, M2MCredentials, default_cache_path
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import CartoAPIError, CredentialsAPIError, CredentialsConfigError, CredentialsError

if TYPE_CHECKING:
    import httpx
    from google.cloud.bigquery import Client

#: The settings of an object assembled without any: the defaults, never the environment.
DEFAULT_SETTINGS = AuthSettings()


def m2m_token_cache(
    cache_filepath: str | os.PathLike[str] | None, use_cache: bool, lock_timeout: float
) -> TokenCache:
    """The M2M token cache: the file (default ``~/.carto-provider/token_m2m.json``), or with
    ``use_cache=False`` one in memory that belongs to one object and goes away with it."""
    if not use_cache:
        return TokenCache(None)
    return TokenCache(cache_filepath or default_cache_path(M2M_CACHE_FILENAME), lock_timeout=lock_timeout)


def _m2m_parts(
    api_base_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    cache_filepath: str | os.PathLike[str] | None,
    use_cache: bool,
    given: AccessToken | None,
    settings: AuthSettings,
) -> dict[str, Any]:
    """What the public constructor builds for ``mode="m2m"`` (carto-auth's: tokens under the default
    retry policy, not ``settings.token_retry``)."""
    cache = m2m_token_cache(cache_filepath, use_cache, single_flight_wait(DEFAULT_RETRY, DEFAULT_TIMEOUT))
    common = {"api_base_url": api_base_url, "settings": settings}
    if client_id and client_secret:
        credentials = M2MCredentials.from_mapping(
            {
                "api_base_url": api_base_url or "https://gcp-us-east1.api.carto.com",
                "client_id": client_id,
                "client_secret": client_secret,
            },
            source="CartoAuth('m2m')",
            settings=settings,
        )
        key = m2m_cache_key(credentials)
        if given is not None and use_cache:
            cache.store(key, given)  # as carto-auth saves the given token to its cache file

        def fetch() -> AccessToken:
            return request_client_credentials_token(credentials)

        return {**common, "cache": cache, "cache_key": key, "fetch_token": fetch}

    def no_credentials() -> AccessToken:
        raise CredentialsError(
            "The access token given to CartoAuth('m2m') is missing or has expired, and there is no "
            "client_id and client_secret to get a new one."
        )

    key = CacheKey.of("M2M token given to CartoAuth", grant="given")
    return {**common, "cache": TokenCache(None), "cache_key": key, "fetch_token": no_credentials}


MODES = ("oauth", "m2m")
#: Added to the worst-case token fetch when waiting for another process's fetch.
LOCK_WAIT_MARGIN = 30.0


def single_flight_wait(policy: CartoRetryPolicy, timeout: float | tuple[float, float]) -> float:
    """How long a process waits for another one fetching the same token: the worst case of one fetch
    under ``policy`` (every attempt timing out, every wait at its cap) plus a margin. Waiting less
    would make each waiter fetch too during an outage; the holder dying frees the lock at once."""
    per_attempt = sum(timeout) if isinstance(timeout, tuple) else 2 * float(timeout)
    waits = max(policy.max_wait, policy.max_retry_after) * max(0, policy.attempts - 1)
    worst = per_attempt * max(1, policy.attempts) + waits
    if policy.budget is not None:
        worst = min(worst, policy.budget + per_attempt)
    return worst + LOCK_WAIT_MARGIN


class CartoAuth:
    """Authenticates with CARTO and hands out tokens and clients: ``carto-auth``'s ``CartoAuth``.

    Build one with :meth:`from_m2m` (a credentials file), :meth:`from_oauth` (interactive login for
    local development), :meth:`from_m2m_credentials` (values, e.g. from a secrets manager), or the
    constructor, whose signature is ``carto-auth``'s. Tokens come from a cache shared by every process
    of the user (see :mod:`.cache`), so creating many ``CartoAuth`` objects costs nothing more than one.
    """

    def __init__(
        self,
        mode: str,
        api_base_url: str | None = None,
        access_token: str | None = None,
        expiration: float | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        cache_filepath: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        open_browser: bool = True,
        org: str | None = None,
    ) -> None:
        """``carto-auth``'s constructor: ``mode`` is ``"m2m"`` or ``"oauth"``; ``access_token`` and
        ``expiration`` (epoch seconds) are a token already obtained, used until it expires; then an
        M2M object uses ``client_id``/``client_secret`` and an OAuth one logs in again
        (``open_browser``, ``org``). ``cache_filepath``/``use_cache`` as in :meth:`from_m2m`; the
        other settings come from the environment (:meth:`AuthSettings.from_environment`)."""
        if mode not in MODES:
            raise CredentialsConfigError("Mode not supported. Available modes: oauth, m2m")
        given = AccessToken.given(access_token, expiration)
        settings = AuthSettings.from_environment()
        if mode == "oauth":
            from carto_provider.auth.login.flow import oauth_parts

            parts = oauth_parts(
                cache_filepath, use_cache, open_browser, api_base_url, org, given=given, settings=settings
            )
        else:
            parts = _m2m_parts(
                api_base_url, client_id, client_secret, cache_filepath, use_cache, given, settings
            )
        self._setup(**parts)
        self._given = given

    @classmethod
    def _assemble(cls, **parts: Any) -> CartoAuth:
        """An instance from its parts (see :meth:`_setup`), without the public constructor."""
        auth = cls.__new__(cls)
        auth._setup(**parts)
        return auth

    def _setup(
        self,
        *,
        api_base_url: str | None,
        cache: TokenCache,
        cache_key: CacheKey,
        fetch_token: Callable[[], AccessToken],
        retry_policy: CartoRetryPolicy = DEFAULT_RETRY,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        on_secret: Callable[[str], None] | None = None,
        bigquery_api_endpoint: str | None = None,
        dw_token_lifetime: float = DW_TOKEN_ASSUMED_LIFETIME,
        settings: AuthSettings = DEFAULT_SETTINGS,
        given: AccessToken | None = None,
        error_hints: Mapping[int, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        """``given``: a token used until it expires; ``error_hints``: advice per status in API errors;
        ``max_response_bytes``: the largest API answer read, counted after decoding;
        ``on_secret`` is called once with every token value this object hands out or uses (Airflow
        passes ``mask_secret``, so tokens become ``***`` in task logs); ``settings`` are the ones the
        caller resolved (the URL rules for ``api_base_url``)."""
        self.settings = settings
        self.api_base_url = settings.check_base_url(api_base_url) if api_base_url else None
        self.cache = cache
        self.cache_key = cache_key
        self.retry_policy = retry_policy
        self.timeout = timeout
        self.bigquery_api_endpoint = bigquery_api_endpoint
        self.dw_token_lifetime = dw_token_lifetime
        self._fetch_token = fetch_token
        self._transport: Transport | None = None
        self._on_secret = on_secret
        self._masked: set[str] = set()
        self._current: AccessToken | None = None  # the hot path's copy; see get_access_token
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._given = given
        self.error_hints = error_hints
        self.max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        return (
            f"CartoAuth(api_base_url={self.api_base_url!r}, key={self.cache_key.label!r}, "
            f"cache={self.cache!r})"
        )

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_m2m(
        cls,
        filepath: str | os.PathLike[str],
        cache_filepath: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        **kwargs: Any,
    ) -> CartoAuth:
        """Authenticate with an M2M credentials file (``api_base_url``, ``client_id``, ``client_secret``,
        optional ``auth_url``).

        Like ``carto-auth``, a token is obtained (or found cached) before this returns, so wrong
        credentials raise :class:`~carto_provider.errors.CredentialsError` here; a missing file raises
        a ``FileNotFoundError``, malformed JSON a ``json.JSONDecodeError``, a missing field an
        ``AttributeError`` (each also a :class:`~carto_provider.errors.CredentialsFileError`).
        ``cache_filepath`` defaults to ``~/.carto-provider/token_m2m.json`` (never carto-auth's file);
        ``use_cache=False`` keeps tokens in this object only. Other keyword arguments as in
        :meth:`from_m2m_credentials`.
        """
        kwargs["settings"] = kwargs.get("settings") or AuthSettings.from_environment()
        credentials = M2MCredentials.from_file(filepath, settings=kwargs["settings"])
        auth = cls.from_m2m_credentials(credentials, cache_filepath, use_cache, **kwargs)
        auth.get_token()
        return auth

    @classmethod
    def from_m2m_credentials(
        cls,
        credentials: M2MCredentials,
        cache_filepath: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        **kwargs: Any,
    ) -> CartoAuth:
        """Authenticate with M2M credentials given as values rather than a file.

        ``cache=`` replaces the file cache, e.g. with a
        :class:`~carto_provider.auth.cache.redis.RedisTokenCache` shared by a fleet of machines.
        Token requests retry under ``settings.token_policy(token_retry=..., chosen=retry_policy)``
        (``settings``: an :class:`~carto_provider.auth.settings.AuthSettings`, by default the environment's).
        """
        settings = kwargs["settings"] = kwargs.get("settings") or AuthSettings.from_environment()
        policy = settings.token_policy(
            token_retry=kwargs.pop("token_retry", None), chosen=kwargs.get("retry_policy")
        )
        timeout = kwargs.get("timeout", DEFAULT_TIMEOUT)
        lock_timeout = kwargs.pop("lock_timeout", None) or single_flight_wait(policy, timeout)
        cache = kwargs.pop("cache", None) or m2m_token_cache(cache_filepath, use_cache, lock_timeout)
        return cls._assemble(
            api_base_url=credentials.api_base_url,
            cache=cache,
            cache_key=m2m_cache_key(credentials),
            fetch_token=lambda: request_client_credentials_token(credentials, policy=policy, timeout=timeout),
            **kwargs,
        )

    @classmethod
    def from_oauth(
        cls,
        cache_filepath: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        open_browser: bool = True,
        api_base_url: str | None = None,
        org: str | None = None,
        **kwargs: Any,
    ) -> CartoAuth:
        """Log in as yourself (OAuth authorization code + PKCE), for local development and notebooks.

        ``cache_filepath`` defaults to ``~/.carto-provider/token_oauth.json`` (the cache ``carto-provider
        login`` fills): a cached unexpired login is reused without any prompt. ``use_cache=False`` logs
        in anew and keeps the token in this object only. ``open_browser=False`` prints the login address
        and reads back the address you land on (or the code), for machines without a browser.
        ``api_base_url`` skips discovering it; ``org`` is your Single Sign-On organization id.
        Optional keyword arguments: ``auth_url``, ``client_id``, ``redirect_uri``,
        ``paste_redirect_uri``, ``login_ui`` (:class:`~carto_provider.auth.login.flow.LoginUI`); the rest
        go to the constructor. Logins have no refresh token: when one expires, a new login runs (never
        inside an Airflow task, which raises :class:`~carto_provider.errors.LoginRequiredError`).
        """
        from carto_provider.auth.login.flow import oauth_parts

        return cls._assemble(
            **oauth_parts(cache_filepath, use_cache, open_browser, api_base_url, org, **kwargs)
        )

    @classmethod
    def from_values(
        cls, api_base_url: str, client_id: str, client_secret: str, auth_url: str | None = None, **kwargs: Any
    ) -> CartoAuth:
        """Shorthand for :meth:`from_m2m_credentials` with plain values."""
        kwargs["settings"] = kwargs.get("settings") or AuthSettings.from_environment()
        credentials = M2MCredentials.from_mapping(
            {"api_base_url": api_base_url, "client_id": client_id, "client_secret": client_secret},
            source="The CARTO M2M credentials",
            auth_url=auth_url,
            settings=kwargs["settings"],
        )
        return cls.from_m2m_credentials(credentials, **kwargs)

    # ------------------------------------------------------------------ tokens

    def _mask_once(self, value: str) -> str:
        """Hand ``value`` to ``on_secret`` (Airflow's ``mask_secret``) the first time it is seen."""
        if self._on_secret is not None and value not in self._masked:
            self._masked.add(value)
            self._on_secret(value)
        return value

    def get_token(self, *, min_ttl: float = 0.0, rejected: str | None = None) -> AccessToken:
        """The current :class:`AccessToken` (value, expiry), refreshed when needed.

        ``rejected`` is a token value an API has just refused (HTTP 401): it is never returned again,
        and only the first of many callers reporting it fetches a replacement.
        """
        given = self._given
        if given is not None and given.value != rejected and given.expires_at - time.time() > min_ttl:
            return given  # the constructor's access_token, until its expiration (as carto-auth)
        token = self.cache.get(self.cache_key, self._fetch_token, min_ttl=min_ttl, rejected=rejected)
        self._mask_once(token.value)
        self._current = token
        return token

    def get_access_token(self, *, min_ttl: float = 0.0) -> str:
        """A valid CARTO access token (``min_ttl``: seconds it must stay valid at least).

        The hot path: while the last token is before its refresh window (precomputed in
        :attr:`AccessToken.fresh_until`), it is returned without consulting the cache.
        """
        token = self._current
        if token is not None and not min_ttl and time.time() < token.fresh_until:
            return token.value
        return self.get_token(min_ttl=min_ttl).value

    def get_api_base_url(self) -> str:
        """The CARTO API base URL, e.g. ``https://gcp-us-east1.api.carto.com`` (None, as in carto-auth,
        for an object constructed without one)."""
        return cast(str, self.api_base_url)

    def _base_url(self) -> str:
        if not self.api_base_url:
            raise CredentialsConfigError("api_base_url required")  # carto-auth's message
        return self.api_base_url

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the CARTO API (``path`` relative to the base URL) on :meth:`api_transport`: a 401
        refreshes the token once and the call is sent once more; transient failures are retried;
        redirects are never followed; any other failure (a 3xx included) raises
        :class:`~carto_provider.errors.CartoAPIError` with CARTO's error. Keyword arguments go to
        :meth:`carto_provider.api.transport.Transport.request` (``json``, ``params``, ``policy``...).
        """
        return self.api_transport().request(method, path, **kwargs)

    def _tokens(self, rejected: str | None) -> str:
        return self.get_token(rejected=rejected).value

    async def _atokens(self, rejected: str | None) -> str:
        """The async token source of :meth:`api_async_transport`: the last token while it is fresh
        and not the refused one, without leaving the loop; otherwise one caller per loop fetches it
        in a worker thread (file or Redis I/O, ``mask_secret``) while the others wait for it, so the
        1000 triggers of a triggerer whose token is refused make one refresh, not 1000."""
        value = self._fresh_value(rejected)
        if value is not None:
            return value
        loop = asyncio.get_running_loop()
        lock = self._async_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            value = self._fresh_value(rejected)
            if value is not None:
                return value
            return (await asyncio.to_thread(self.get_token, rejected=rejected)).value

    def _fresh_value(self, rejected: str | None) -> str | None:
        token = self._current if self._current is not None else self._given
        if token is not None and token.value != rejected and time.time() < token.fresh_until:
            return token.value
        return None

    def _transport_options(self) -> dict[str, Any]:
        return {
            "tokens": self._tokens,
            "policy": self.retry_policy,
            "timeout": self.timeout,
            "error_hints": self.error_hints,
            "max_body": self.max_response_bytes,
            "params": CLIENT_PARAMS,
        }

    def api_transport(self, base_url: str | None = None) -> Transport:
        """The one authenticated transport of this object (one HTTP connection pool), opened on first
        use: every sync CARTO API call of a hook or of :meth:`request` goes through it. With
        ``base_url`` (another CARTO host, e.g. the accounts host), a new transport with the same
        tokens, retries, timeouts and limits, for the caller to keep."""
        if base_url is not None:
            return Transport(base_url, **self._transport_options())
        if self._transport is None:
            self._transport = Transport(self._base_url(), **self._transport_options())
        return self._transport

    def api_async_transport(self, base_url: str | None = None) -> AsyncTransport:
        """A new authenticated async transport with this object's tokens, retries, timeouts and
        limits, to the API base URL or ``base_url``: a trigger's. It sends through the running loop's
        shared HTTP client for its origin (one pool, kept alive, one TLS context: every trigger of a
        triggerer), and hands out this object's token on the loop while it is fresh (see
        :meth:`_atokens`)."""
        return AsyncTransport(
            base_url or self._base_url(),
            atokens=self._atokens,
            shared_client=True,
            **self._transport_options(),
        )

    # ------------------------------------------------------------------ CARTO Data Warehouse

    def get_carto_dw_credentials(self) -> tuple[str, str]:
        """``(project_id, token)`` for the CARTO Data Warehouse (BigQuery underneath)."""
        try:
            response = self.request("GET", DW_TOKEN_PATH)
        except CredentialsError:
            raise
        except CartoAPIError as exc:  # carto-auth's contract: every DW token failure is a CredentialsError
            raise CredentialsAPIError(str(exc), status=exc.status, error=exc.error, url=exc.url) from None
        body = response_body(response)
        project_id, token = parse_dw_token_response(body, api_base_url=self._base_url())
        self._mask_once(token)
        return project_id, token

    def get_carto_dw_client(self, **client_kwargs: Any) -> Client:
        """A ``google.cloud.bigquery.Client`` for the DW that keeps working past token expiry.

        ``client_kwargs`` go to ``bigquery.Client`` (e.g. ``location``).
        """
        return build_dw_client(
            self.get_carto_dw_credentials,
            api_endpoint=client_kwargs.pop("api_endpoint", None) or self.bigquery_api_endpoint,
            token_lifetime=self.dw_token_lifetime,
            **client_kwargs,
        )
