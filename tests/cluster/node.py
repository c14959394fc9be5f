"""``[core] hostname_callable`` of the native cluster: each process is its own machine.

Every Airflow process of ``make test-cluster`` runs on this one host, so Airflow's default (the
FQDN) would record the same hostname for every worker; the harness names each process instead.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The harness's name for this process (``worker-1``...), else the FQDN."""
    return os.environ.get("CARTO_CLUSTER_NODE") or socket.getfqdn()
