"""Whether the ``emulator`` extra is installed, checked before anything of the emulator is imported.

Without the extra, ``carto-provider emulator`` would start and fail every job on ``No module named
'duckdb'`` (on Airflow 2.11, which has no uvicorn, it would crash on start): the commands that need it
call :func:`require_emulator_extra` first and stop at once with one line that names what to install.
"""

from __future__ import annotations

import importlib.util

#: What ``pip install 'airflow-provider-carto[emulator]'`` installs, as import names.
EMULATOR_MODULES = ("fastapi", "uvicorn", "duckdb", "duckdb_extension_spatial", "sqlglot", "requests")
EMULATOR_INSTALL = "pip install 'airflow-provider-carto[emulator]'"


class MissingExtraError(ImportError):
    """A command or fixture needs an optional extra of airflow-provider-carto that is not installed."""


def missing_emulator_modules() -> list[str]:
    """The import names of the emulator extra that cannot be found (``[]`` when it is installed)."""
    return [name for name in EMULATOR_MODULES if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (import blocked)
        return False


def require_emulator_extra(what: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra when ``what`` cannot run without it."""
    missing = missing_emulator_modules()
    if missing:
        raise MissingExtraError(
            f"{what} needs the emulator extra (missing: {', '.join(missing)}): {EMULATOR_INSTALL}"
        )
