"""Import preview against the emulator over loopback HTTP: the hook's preview, and the import
operator previewing, adjusting the columns and importing with them and autoguessing off."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import pytest

from carto_provider.api.import_preview import ImportPreview
from carto_provider.errors import CartoError
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.operators.imports import CartoImportOperator
from carto_provider.testing.routes.imports import imports_api, serve_file
from tests.carto_jobs_support import PROJECT, rows

CSV = "id,name,opened,zip\n1,Gran Via,2024-01-02,28013\n2,Diagonal,2024-03-04,08008\n"
TABLE = f"{PROJECT}.shared.previewed"


def test_the_hook_previews_the_columns_carto_would_create(fast_carto):
    url = fast_carto.url + serve_file(fast_carto.state, "stores.csv", CSV)
    preview = CartoImportsHook().preview_import(url)
    assert preview.schema == [
        {"name": "id", "type": "INT64"},
        {"name": "name", "type": "STRING"},
        {"name": "opened", "type": "DATE"},
        {"name": "zip", "type": "INT64"},
    ]
    assert preview.rows[0]["name"] == "Gran Via"
    assert fast_carto.events("import_preview") == 1
    assert fast_carto.calls("POST /v3/imports") == 0  # nothing was imported


def test_the_operator_previews_adjusts_and_imports_with_autoguessing_off(fast_carto):
    url = fast_carto.url + serve_file(fast_carto.state, "stores.csv", CSV)
    op = CartoImportOperator(
        task_id="import",
        url=url,
        destination=TABLE,
        preview=True,
        schema_adjustment={"zip": "STRING"},
        deferrable=False,
        overwrite=True,
    )
    result = op.execute({})
    assert [c["type"] for c in result["schema"]] == ["INT64", "STRING", "DATE", "STRING"]
    sent = imports_api(fast_carto.state).jobs.newest_first()[0].fields
    assert sent["autoguessing"] is False and sent["schema"][3] == {"name": "zip", "type": "STRING"}
    assert rows(fast_carto, f"SELECT zip FROM `{TABLE}` ORDER BY id") == [{"zip": "28013"}, {"zip": "08008"}]


def test_a_function_may_rewrite_the_previewed_columns(fast_carto):
    url = fast_carto.url + serve_file(fast_carto.state, "stores.csv", CSV)
    op = CartoImportOperator(
        task_id="import",
        url=url,
        destination=TABLE,
        preview=True,
        deferrable=False,
        overwrite=True,
        schema_adjustment=lambda cols: [{**c, "type": "STRING"} for c in cols],
    )
    assert {c["type"] for c in op.execute({})["schema"]} == {"STRING"}


def test_preview_arguments_are_checked():
    with pytest.raises(ValueError, match="not both"):
        CartoImportOperator(
            task_id="i",
            url="https://x/f.csv",
            destination="p.d.t",
            preview=True,
            schema=[{"name": "a", "type": "STRING"}],
            autoguessing=False,
        )
    with pytest.raises(ValueError, match="needs preview=True"):
        CartoImportOperator(
            task_id="i", url="https://x/f.csv", destination="p.d.t", schema_adjustment={"a": "STRING"}
        )
    preview = ImportPreview.from_response({"columns": [{"name": "a", "type": "INT64"}], "data": [[1]]})
    with pytest.raises(ValueError, match="does not have"):
        preview.adjusted({"b": "STRING"})
    with pytest.raises(CartoError, match="no columns"):
        ImportPreview.from_response({"schema": []})
