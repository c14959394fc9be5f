"""A separate process that asks for a CARTO token, for the multi-process cache tests.

Usage: python token_worker.py CREDENTIALS_FILE CACHE_FILE START_AT [dw]
Imports everything first, sleeps until START_AT (epoch seconds) so that all workers ask at the same
instant, then prints one JSON line: {"fp": <token fingerprint>, "seconds": <time to token>}.
With "dw" it also fetches the CARTO DW credentials (exercising refresh-on-401).
"""

from __future__ import annotations

import json
import sys
import time

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.tokens import fingerprint


def main() -> int:
    credentials, cache, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    want_dw = len(sys.argv) > 4 and sys.argv[4] == "dw"
    auth = CartoAuth.from_m2m(credentials, cache_filepath=cache)
    time.sleep(max(0.0, start_at - time.time()))
    started = time.monotonic()
    token = auth.get_access_token()
    if want_dw:
        auth.get_carto_dw_credentials()
    print(json.dumps({"fp": fingerprint(token), "seconds": time.monotonic() - started}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
