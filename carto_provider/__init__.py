"""Apache Airflow provider for CARTO.

Importing this package is cheap on purpose: the scheduler imports it while parsing DAG files, so it
only defines the version and the provider-metadata entry point.
"""

from __future__ import annotations

from typing import Any

from carto_provider._version import __version__

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""
    from carto_provider.provider_info import provider_metadata

    return provider_metadata()
