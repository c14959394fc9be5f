"""The interactive OAuth login (authorization code + PKCE) for local development: the flow
(:mod:`.flow`), the public client and its cache (:mod:`.oauth`), account discovery (:mod:`.discovery`)
and the cached login an Airflow task may use without prompting (:mod:`.cached`)."""
