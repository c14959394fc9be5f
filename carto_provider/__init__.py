"""Apache Airflow provider for CARTO.

Importing this package is cheap on purpose: the scheduler imports it while parsing DAG files, so it
only defines the version and the provider-metadata entry point.
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""
    from carto_provider.provider_info import get_provider_info as _get_provider_info

    return _get_provider_info()
