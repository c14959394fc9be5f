"""Provider metadata for Airflow (the ``apache_airflow_provider`` entry point) and the connection form.

Pure data: Airflow 3.3 draws the connection form from this without importing the hook, and the
hook's legacy ``get_connection_form_widgets`` (Airflow 2.x, 3.0, 3.1) is built from the same fields.
"""

from __future__ import annotations

from typing import Any

from carto_provider._version import __version__

DEFAULT_AUTH_URL = "https://auth.carto.com"
API_BASE_URL_PLACEHOLDER = "https://gcp-us-east1.api.carto.com"

#: Extra fields of the ``carto`` connection: name -> (label, description, JSON schema).
CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Authentication type",
        "description": "m2m (default): M2M client, Enterprise Large plans and up. api_token: an API "
        "access token as password, no Client ID, any plan. oauth: your carto-provider login, local use.",
        "schema": {"type": ["string", "null"], "enum": ["m2m", "api_token", "oauth"], "default": "m2m"},
    },
    "auth_url": {
        "label": "Auth URL",
        "description": "CARTO's OAuth server; keep the default unless CARTO told you otherwise.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_AUTH_URL},
    },
    "org": {
        "label": "SSO organization",
        "description": "Your CARTO Single Sign-On organization id (org_...); only for oauth with SSO.",
        "schema": {"type": ["string", "null"]},
    },
    "credentials_file": {
        "label": "Credentials file",
        "description": "Path on the workers of a carto_credentials.json, used whole instead of the host, "
        "Client ID/Secret; only in a directory listed in [carto] credentials_file_dirs.",
        "schema": {"type": ["string", "null"]},
    },
    # The three cache extras were token_cache_dir, token_cache, token_cache_redis_url before 1.0: Airflow
    # masks the value of any extra whose name contains "token" (hooks/params.py DEPRECATED_EXTRAS).
    "cache_dir": {
        "label": "Token cache directory",
        "description": "Private directory on each worker where tasks share their CARTO token "
        "(default ~/.carto-provider).",
        "schema": {"type": ["string", "null"]},
    },
    "cache_backend": {
        "label": "Token cache",
        "description": "local: one token per machine (file cache). redis: one token shared by every "
        "worker and pod through Redis, encrypted with the client secret (default from [carto] token_cache).",
        # No form default: blank lets [carto] token_cache decide.
        "schema": {"type": ["string", "null"], "enum": ["local", "redis"]},
    },
    "cache_redis_url": {
        "label": "Token cache Redis URL",
        "description": "redis://[:password@]host:port/db for cache_backend=redis, e.g. your Celery broker "
        "with another db number (default from [carto] token_cache_redis_url).",
        "schema": {"type": ["string", "null"]},
    },
    "carto_connection": {
        "label": "CARTO connection for SQL",
        "description": "The CARTO connection (Workspace > Connections) where SQLExecuteQueryOperator, the "
        "SQL check operators and the DB-API hook run SQL (default carto_dw, the CARTO Data Warehouse).",
        "schema": {"type": ["string", "null"]},
    },
    "bigquery_api_endpoint": {
        "label": "BigQuery API endpoint",
        "description": "Optional BigQuery endpoint for the CARTO Data Warehouse client "
        "(private endpoints, the CARTO emulator).",
        "schema": {"type": ["string", "null"]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "API Base URL", "login": "Client ID", "password": "Client Secret"},
    "placeholders": {
        "host": API_BASE_URL_PLACEHOLDER,
        "login": "M2M client id from CARTO Workspace > Developers > Credentials",
        "password": "M2M client secret, or the API access token (auth_type api_token)",
        "auth_url": DEFAULT_AUTH_URL,
        "credentials_file": "/opt/airflow/secrets/carto_credentials.json",
        "cache_dir": "~/.carto-provider",
        "cache_redis_url": "redis://redis:6379/1",
        "org": "org_1234",
        "carto_connection": "carto_dw",
    },
}

#: Options of the ``[carto]`` section of the Airflow config (env ``AIRFLOW__CARTO__<OPTION>``).
CONFIG_OPTIONS: dict[str, dict[str, Any]] = {
    "poll_interval": {
        "description": "Longest wait, in seconds, between two status checks of a CARTO SQL job or "
        "import (checks start 0.5 s apart and grow by half up to it), for operators that do not "
        "set poll_interval, polling or deferred.",
        "version_added": "0.1.0",
        "type": "float",
        "example": "30",
        "default": "10",
    },
    "status_words": {
        "description": "More CARTO job status words and what they mean, as a JSON object of word -> "
        "success, failed, cancelled or running (case-insensitive), added to the provider's own (CARTO "
        "does not publish the SQL job status words).",
        "version_added": "0.1.0",
        "type": "string",
        "example": '{"wrapped_up": "success"}',
        "default": "",
    },
    "unknown_status_patience": {
        "description": "Seconds a CARTO job status word the provider does not know is polled on (logged "
        "at WARNING) before the wait ends as a timeout naming the word.",
        "version_added": "0.1.0",
        "type": "float",
        "example": "120",
        "default": "600",
    },
    "end_from_trigger": {
        "description": "Whether deferred CARTO operators and sensors that do not set end_from_trigger "
        "let the trigger end the task when the job ends (its return value as XCom) instead of a worker "
        "resuming it: no execute_complete and no OpenLineage COMPLETE event (the START event carries the "
        "datasets); a failed job ends the task in the triggerer on Airflow 3.3+ only (operators).",
        "version_added": "1.0.0",
        "type": "boolean",
        "example": "True",
        "default": "False",
    },
    "token_cache": {
        "description": "Where workers keep their CARTO tokens, for connections whose extra does not say: "
        "local (one token per machine, in a 0600 file under the token cache directory) or redis (one "
        "token shared by every worker and pod, encrypted with the client secret; needs "
        "token_cache_redis_url).",
        "version_added": "0.1.0",
        "type": "string",
        "example": "redis",
        "default": "local",
    },
    "credentials_file_dirs": {
        "description": "Directories (separated by commas) on the workers where a connection's "
        "credentials_file may be; empty (the default): the credentials_file extra is refused. Whoever "
        "can edit a connection could otherwise name another team's credentials file.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "/opt/airflow/secrets/carto",
        "default": "",
    },
    "token_cache_redis_url": {
        "description": "The Redis of token_cache = redis (redis://[:password@]host:port/db), for "
        "connections whose extra does not say; e.g. the Celery broker with another db number.",
        "version_added": "0.1.0",
        "type": "string",
        "sensitive": True,
        "example": "redis://redis:6379/1",
        "default": "",
    },
}


#: The ``carto://{connection}/{table}`` asset URI scheme (carto_provider.assets).
ASSET_URIS: dict[str, Any] = {
    "schemes": ["carto"],
    "handler": "carto_provider.assets.sanitize_uri",
    "to_openlineage_converter": "carto_provider.assets.convert_asset_to_openlineage",
    "factory": "carto_provider.assets.create_asset",
}


#: The modules of each kind Airflow lists for the CARTO integration.
#: The Airflow-facing folders, whose public modules Airflow's provider schema lists by kind.
MODULE_KINDS = ("hooks", "operators", "sensors", "triggers")


def provider_modules() -> dict[str, list[str]]:
    """Every public module of each Airflow-facing folder, read from the package tree (so a new hook or
    operator module is registered by existing); nothing is imported but the folders' empty ``__init__``."""
    import importlib
    import pkgutil

    modules = {}
    for kind in MODULE_KINDS:
        package = importlib.import_module(f"carto_provider.{kind}")
        names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
        modules[kind] = [f"carto_provider.{kind}.{name}" for name in names]
    return modules


def provider_metadata() -> dict[str, Any]:
    """The dict Airflow validates against its provider schema."""
    return {
        "package-name": "airflow-provider-carto",
        "name": "CARTO",
        "description": "Run CARTO SQL jobs, imports, workflows, LDS geocoding and Activity Data exports, "
        "manage API access tokens, and use the CARTO Data Warehouse, from Airflow DAGs. https://carto.com/",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "CARTO",
                "external-doc-url": "https://docs.carto.com/carto-for-developers/reference/carto-api",
                "tags": ["service"],
            }
        ],
        **{
            kind: [{"integration-name": "CARTO", "python-modules": modules}]
            for kind, modules in provider_modules().items()
        },
        "connection-types": [
            {
                "connection-type": "carto",
                # common.sql builds the hook registered here, so it is the DB-API one (a CartoAuthHook too).
                "hook-class-name": "carto_provider.hooks.dbapi.CartoDbApiHook",
                "hook-name": "CARTO",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONNECTION_EXTRA_FIELDS,
            }
        ],
        "asset-uris": [ASSET_URIS],
        "dataset-uris": [ASSET_URIS],  # Airflow 2.x
        "config": {"carto": {"description": "The CARTO provider.", "options": CONFIG_OPTIONS}},
    }
