"""The ``carto`` connection form: provider metadata (Airflow 3.2+) and hook methods (2.x, 3.0, 3.1) agree.

Runs on Airflow 3.3 (``make pytest``) and 2.11 (``make test-airflow2``). The checks are generic over
``CONNECTION_EXTRA_FIELDS`` so a field added later is held to the same rules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import airflow
import jsonschema
import pytest
from packaging.version import Version

from carto_provider import get_provider_info
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.provider_info import CONNECTION_EXTRA_FIELDS, UI_FIELD_BEHAVIOUR

AIRFLOW_3 = Version(airflow.__version__).major >= 3
AIRFLOW_SCHEMAS = Path(airflow.__file__).parent
#: The extras the issue names; other engineers may add more (the generic checks cover those).
CONTRACT_EXTRAS = {"auth_type", "auth_url", "org", "credentials_file", "cache_dir"}


def carto_connection_type() -> dict:
    (entry,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "carto"]
    return entry


# ---------------------------------------------------------------------------------------------- metadata


def test_provider_info_is_valid_for_this_airflow():
    schema = json.loads((AIRFLOW_SCHEMAS / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)
    assert get_provider_info()["package-name"] == distribution("airflow-provider-carto").metadata["Name"]


def test_standard_fields_are_relabelled_and_schema_and_port_hidden():
    behaviour = carto_connection_type()["ui-field-behaviour"]
    assert behaviour["relabeling"] == {
        "host": "API Base URL",
        "login": "Client ID",
        "password": "Client Secret",
    }
    assert behaviour["placeholders"]["host"] == "https://gcp-us-east1.api.carto.com"
    assert sorted(behaviour["hidden-fields"]) == ["port", "schema"]


def test_the_contract_extras_and_their_defaults():
    fields = carto_connection_type()["conn-fields"]
    assert set(fields) >= CONTRACT_EXTRAS
    auth_type = fields["auth_type"]["schema"]
    assert auth_type["default"] == "m2m"
    assert {"m2m", "oauth"} <= set(auth_type["enum"])
    assert fields["auth_url"]["schema"]["default"] == "https://auth.carto.com"


@pytest.mark.parametrize("name", sorted(CONNECTION_EXTRA_FIELDS))
def test_every_extra_has_a_label_a_one_line_description_and_is_optional(name):
    spec = CONNECTION_EXTRA_FIELDS[name]
    assert spec["label"].strip() and "\n" not in spec["label"]
    description = spec["description"]
    assert description.strip() and "\n" not in description and len(description) <= 200, description
    # optional: a blank field is stored as null, never rejected by the form
    assert "null" in spec["schema"]["type"]
    # the Airflow 3 select would offer (and show) a "null" choice
    assert None not in spec["schema"].get("enum", [])


def should_hide_value_for_key(name: str) -> bool:
    """Airflow's own rule for which extras it masks in the UI and the REST API."""
    if AIRFLOW_3:
        from airflow.api_fastapi.core_api.datamodels.connections import should_hide_value_for_key as hide
    else:
        from airflow.utils.log.secrets_masker import should_hide_value_for_key as hide
    return bool(hide(name))


@pytest.mark.parametrize("name", sorted(CONNECTION_EXTRA_FIELDS))
def test_fields_airflow_masks_have_no_form_default(name):
    """Airflow 3 sends "***" as the default of a masked field (any name with "token", "secret"...),
    and the form would save that "***" as the value."""
    if should_hide_value_for_key(name):
        assert "default" not in CONNECTION_EXTRA_FIELDS[name]["schema"]


def test_placeholders_only_name_fields_the_form_has():
    standard = {"host", "login", "password", "schema", "port", "description"}
    assert set(UI_FIELD_BEHAVIOUR["placeholders"]) <= standard | set(CONNECTION_EXTRA_FIELDS)


# ---------------------------------------------------------------------------------------------- hook methods


def test_legacy_field_behaviour_is_the_metadata_with_snake_case_keys():
    legacy = CartoAuthHook.get_ui_field_behaviour()
    assert legacy == {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}
    schema = json.loads((AIRFLOW_SCHEMAS / "customized_form_field_behaviours.schema.json").read_text())
    jsonschema.validate(legacy, schema)


@pytest.mark.skipif(AIRFLOW_3, reason="Airflow 2.x builds the FAB form from the hook's methods")
def test_airflow2_builds_a_fab_widget_for_every_extra():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["carto"]
    assert hook is not None
    assert hook.hook_class_name == "carto_provider.hooks.dbapi.CartoDbApiHook"
    assert hook.connection_testable
    widgets = {
        key.removeprefix("extra__carto__"): info
        for key, info in manager.connection_form_widgets.items()
        if key.startswith("extra__carto__")
    }
    assert set(widgets) == set(CONNECTION_EXTRA_FIELDS)
    for name, info in widgets.items():
        assert info.field_name == name  # stored as a top-level key of `extra`, no prefix
        assert str(info.field.args[0]) == CONNECTION_EXTRA_FIELDS[name]["label"]
        assert info.field.kwargs["description"] == CONNECTION_EXTRA_FIELDS[name]["description"]
    behaviour = manager.field_behaviours["carto"]
    assert behaviour["relabeling"]["host"] == "API Base URL"
    assert set(behaviour["hidden_fields"]) == {"schema", "port"}


@pytest.mark.skipif(AIRFLOW_3, reason="the Flask webserver is Airflow 2.x only")
def test_airflow2_webserver_connection_form_renders_the_carto_fields(airflow_db):
    from airflow.www.app import create_app
    from airflow.www.forms import create_connection_form_class

    app = create_app(testing=True)
    with app.test_request_context():
        form = create_connection_form_class()()
        for name, spec in CONNECTION_EXTRA_FIELDS.items():
            field = form[f"extra__carto__{name}"]
            assert field.label.text == spec["label"]
            assert field.description == spec["description"]
            assert f'name="extra__carto__{name}"' in str(field())
        assert form["extra__carto__auth_type"].data == "m2m"
        assert form["extra__carto__auth_url"].data == "https://auth.carto.com"


@pytest.mark.skipif(not AIRFLOW_3, reason="Airflow 3.0/3.1's mocked-FAB path exists only on 3.x")
def test_airflow30_31_form_path_has_every_extra():
    """3.0 and 3.1 import the hook with wtforms mocked; run that path in a fresh interpreter."""
    script = (
        "import json\n"
        "from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService\n"
        "hooks, widgets, behaviours = HookMetaService._get_hooks_with_mocked_fab()\n"
        "fields = HookMetaService._convert_extra_fields(widgets).get('carto') or {}\n"
        "print(json.dumps({'fields': {k: v['schema']['title'] for k, v in fields.items()},"
        " 'behaviour': behaviours.get('carto')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    assert payload["fields"] == {name: spec["label"] for name, spec in CONNECTION_EXTRA_FIELDS.items()}
    assert payload["behaviour"]["relabeling"]["password"] == "Client Secret"


# ---------------------------------------------------------------------------------------------- Airflow 3.3


@pytest.mark.skipif(not AIRFLOW_3, reason="the React form payload is Airflow 3 only")
def test_airflow3_react_form_payload_has_the_carto_fields():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "carto"]
    assert meta.hook_name == "CARTO"
    assert meta.hook_class_name == "carto_provider.hooks.dbapi.CartoDbApiHook"
    standard = meta.standard_fields.model_dump()
    assert standard["host"] == {
        "hidden": False,
        "title": "API Base URL",
        "placeholder": "https://gcp-us-east1.api.carto.com",
    }
    assert standard["login"]["title"] == "Client ID"
    assert standard["password"]["title"] == "Client Secret"
    assert standard["port"]["hidden"] and standard["url_schema"]["hidden"]
    extra = meta.extra_fields
    assert set(extra) == set(CONNECTION_EXTRA_FIELDS)
    for name, spec in CONNECTION_EXTRA_FIELDS.items():
        assert extra[name]["schema"]["title"] == spec["label"]
        assert extra[name]["description"] == spec["description"]
    assert extra["auth_type"]["value"] == "m2m"
    assert extra["auth_url"]["value"] == "https://auth.carto.com"
