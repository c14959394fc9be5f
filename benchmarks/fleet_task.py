"""One task of the simulated fleet (item 6): get a token on the simulated clock, report, exit.

``python -m benchmarks.fleet_task CACHE CREDENTIALS_FILE REDIS_URL`` with ``CACHE`` ``file`` (the
default ``~/.carto-provider`` cache of this process's ``HOME``) or ``redis`` (the Redis cache in front
of that file cache). ``$BENCH_SIMCLOCK`` sets the shared simulated clock. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from benchmarks import simclock


def main(argv: list[str]) -> int:
    simclock.install_from_env()
    cache, credentials, redis_url = argv
    from carto_provider.auth.carto_auth import CartoAuth

    kwargs: dict[str, Any] = {}
    if cache == "redis":
        from carto_provider.auth.cache.policy import TokenCache
        from carto_provider.auth.cache.redis import RedisTokenCache
        from carto_provider.auth.settings import M2M_CACHE_FILENAME, M2MCredentials, default_cache_path

        secret = M2MCredentials.from_file(credentials).client_secret
        local = TokenCache(default_cache_path(M2M_CACHE_FILENAME))
        kwargs["cache"] = RedisTokenCache(redis_url, secret, local=local)
    result: dict[str, Any] = {"ok": True, "error": None}
    try:
        CartoAuth.from_m2m(credentials, **kwargs).get_access_token()
    except Exception as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
