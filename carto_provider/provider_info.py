"""Provider metadata for Airflow (the ``apache_airflow_provider`` entry point) and the connection form.

Pure data: Airflow 3.3 draws the connection form from this without importing the hook, and the
hook's legacy ``get_connection_form_widgets`` (Airflow 2.x, 3.0, 3.1) is built from the same fields.
"""

from __future__ import annotations

from typing import Any

from carto_provider import __version__

DEFAULT_AUTH_URL = "https://auth.carto.com"
API_BASE_URL_PLACEHOLDER = "https://gcp-us-east1.api.carto.com"

#: Extra fields of the ``carto`` connection: name -> (label, description, JSON schema).
CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "auth_type": {
        "label": "Authentication type",
        "description": "m2m: the M2M client below, for scheduled DAGs. "
        "oauth: your own CARTO login cached by `carto-provider login`, for local development.",
        "schema": {"type": ["string", "null"], "enum": ["m2m", "oauth", None], "default": "m2m"},
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
        "description": "Path on the workers of a carto_credentials.json, used instead of Client ID/Secret.",
        "schema": {"type": ["string", "null"]},
    },
    "token_cache_dir": {
        "label": "Token cache directory",
        "description": "Private directory on each worker where tasks share their CARTO token "
        "(default ~/.carto-auth).",
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
        "password": "M2M client secret",
        "auth_url": DEFAULT_AUTH_URL,
        "credentials_file": "/opt/airflow/secrets/carto_credentials.json",
        "token_cache_dir": "~/.carto-auth",
        "org": "org_1234",
    },
}


def get_provider_info() -> dict[str, Any]:
    """The dict Airflow validates against its provider schema."""
    return {
        "package-name": "airflow-provider-carto",
        "name": "CARTO",
        "description": "Run CARTO SQL jobs, imports and workflows, and use the CARTO Data Warehouse, "
        "from Airflow DAGs. https://carto.com/",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "CARTO",
                "external-doc-url": "https://docs.carto.com/carto-for-developers/reference/carto-api",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "CARTO", "python-modules": ["carto_provider.hooks.carto"]}],
        "connection-types": [
            {
                "connection-type": "carto",
                "hook-class-name": "carto_provider.hooks.carto.CartoAuthHook",
                "hook-name": "CARTO",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONNECTION_EXTRA_FIELDS,
            }
        ],
    }
