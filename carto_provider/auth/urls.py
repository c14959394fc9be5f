"""The one URL check of the package: every base URL, auth URL, redirect URI and tenant domain is
validated here, when the settings are read, with a message naming the field and the rule broken.

Rules: http or https only (a missing scheme means https); plain http only for loopback hosts and the
hosts the caller allows (``$CARTO_ALLOW_INSECURE_HTTP_HOSTS``, read at the edge); a host that is a
DNS name, an IPv4 address or a bracketed IPv6 address; a port from 1 to 65535; no user info, query or
fragment; no whitespace or control character anywhere (nothing is silently stripped). Pure: no
environment, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from urllib.parse import urlsplit

from carto_provider.errors import CredentialsConfigError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
EXAMPLE = "e.g. https://gcp-us-east1.api.carto.com"


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1) only: another
    ``*.localhost`` name goes to whatever the resolver says (RFC 6761 asks, resolvers need not obey)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown(text: str, limit: int = 80) -> str:
    """A value quoted for a message: printable characters only, user info dropped, capped."""
    if "@" in text:
        scheme, sep, rest = text.rpartition("://")
        text = f"{scheme}{sep}***@{rest.rpartition('@')[2]}"
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(printable[:limit] + ("..." if len(printable) > limit else ""))


def _fail(what: str, value: str, rule: str) -> CredentialsConfigError:
    return CredentialsConfigError(f"The {what} {shown(value)} {rule}.")


def host_syntax_ok(host: str) -> bool:
    """A DNS name (labels of letters, digits, ``-``, ``_``), an IPv4 address or ``[IPv6]``."""
    if host.startswith("["):
        try:
            return host.endswith("]") and ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    if len(host) > 253 or not host:
        return False
    return all(_LABEL.match(label) for label in host.split("."))


def check_authority(authority: str, *, what: str, value: str, min_port: int = 1) -> tuple[str, int | None]:
    """``host[:port]`` split and checked; the host lower-cased. ``min_port`` 0 lets port 0 ("any free
    port") through, for a loopback redirect URI."""
    if "@" in authority:
        raise _fail(what, value, "must not carry user info (user:password@); put credentials elsewhere")
    host, port_text = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise _fail(what, value, "has an invalid host: expected a host name or address")
            port_text = rest[1:]
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not host_syntax_ok(host):
        raise _fail(what, value, "has an invalid host: expected a host name, an IPv4 address or [IPv6]")
    port = None
    if port_text is not None:
        if not _PORT.match(port_text) or not min_port <= int(port_text) <= 65535:
            raise _fail(what, value, f"has an invalid port: expected a number from {min_port} to 65535")
        port = int(port_text)
    return host.lower(), port


def check_url(
    url: str,
    *,
    what: str,
    insecure_http_hosts: Collection[str] = (),
    loopback_only: bool = False,
    min_port: int = 1,
) -> str:
    """``url`` validated (see the module docstring) and returned without a trailing slash.

    ``loopback_only`` refuses every host but loopback; ``min_port``: see :func:`check_authority`.
    """
    text = url if isinstance(url, str) else ""
    if not text:
        raise CredentialsConfigError(f"The {what} is empty; expected an https:// URL, {EXAMPLE}.")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise _fail(what, text, "contains whitespace or control characters; remove them")
    scheme_match = _SCHEME.match(text)
    if "://" not in text and scheme_match:
        raise _fail(what, text, f"is not an http(s) URL (scheme {scheme_match.group(1)!r}); {EXAMPLE}")
    candidate = text if "://" in text else f"https://{text}"
    scheme, _, rest = candidate.partition("://")
    if scheme.lower() not in ("http", "https"):
        raise _fail(what, text, f"is not an http(s) URL with a host name; {EXAMPLE}")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host, _port = check_authority(authority, what=what, value=text, min_port=min_port)
    parts = urlsplit(candidate)
    if parts.query or parts.fragment or "?" in rest or "#" in rest:
        raise _fail(what, text, "must not carry a query (?...) or fragment (#...)")
    bare_host = host.strip("[]")
    if loopback_only and not is_loopback_host(bare_host):
        raise _fail(what, text, "must point to localhost or a loopback address")
    allowed = {h.strip().lower() for h in insecure_http_hosts} - {""}
    if scheme.lower() == "http" and not (is_loopback_host(bare_host) or bare_host in allowed):
        raise _fail(
            what,
            text,
            f"uses http:// for the non-loopback host {bare_host!r}; use https:// (plain http is only "
            "accepted for localhost, e.g. the CARTO emulator, and for hosts listed in "
            "$CARTO_ALLOW_INSECURE_HTTP_HOSTS)",
        )
    return f"{scheme.lower()}://{authority}{parts.path}".rstrip("/")


def connection_base_url(host: str | None, port: object, path: str | None) -> str | None:
    """The API base URL of a connection: its host, with the port and path that the URI form
    (``carto://id:secret@http://host:8808/api``) puts in the ``port`` and ``schema`` fields."""
    host = (host or "").strip()
    if not host:
        return None
    scheme, sep, rest = host.rpartition("://")
    authority, slash, host_path = rest.partition("/")
    if port and ":" not in authority.rpartition("]")[2]:
        authority = f"{authority}:{port}"
    path = (path or "").strip().strip("/")
    if path and not host_path.strip("/"):
        slash, host_path = "/", path
    return f"{scheme}{sep}{authority}{slash}{host_path}"
