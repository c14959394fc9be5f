"""The CARTO connection form in Airflow 3's UI, in a real browser: add, save, Test (right and wrong secret).

Admin -> Connections -> Add Connection -> CARTO: the relabelled standard fields and every extra field
from the provider metadata are shown; the form is filled with the emulator's values and saved; the
row's "Test Connection" button runs ``CartoAuthHook.test_connection`` in the API server, which calls
the emulator. A screenshot of the filled form is written to ``build/ui/connection-form.png``.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from carto_provider.provider_info import API_BASE_URL_PLACEHOLDER, CONNECTION_EXTRA_FIELDS, DEFAULT_AUTH_URL
from tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.ui

WRONG_SECRET = "wrong-secret-for-the-ui-0123"


def send_a_null_port(route) -> None:
    """Work around apache/airflow#73298 (fixed after 3.3.2) in the browser.

    The row's Test button sends ``port: Number(null)``, i.e. 0, for a connection without a port, and
    the 3.3.2 API answers 400 "The host or port to test differs from the stored connection". Send the
    null the UI meant, which is what the fixed API treats 0 as.
    """
    body = route.request.post_data_json
    if isinstance(body, dict) and body.get("port") == 0:
        body["port"] = None
    route.continue_(post_data=json.dumps(body))


def open_add_connection_form(page):
    """Admin -> Connections -> Add Connection -> type CARTO; returns the dialog."""
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    expect(page).to_have_url(re.compile(r"/connections$"))
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    connection_type = dialog.get_by_role("combobox", name="Connection Type")
    connection_type.fill("CARTO")
    dialog.get_by_role("option", name="CARTO", exact=True).click()
    expect(dialog.get_by_text("CARTO", exact=True)).to_be_visible()
    return dialog


def fill_standard_fields(dialog, conn_id: str, emulator, secret: str) -> None:
    """Checks the relabelled/hidden standard fields, then fills them for ``emulator``'s client."""
    from playwright.sync_api import expect

    dialog.get_by_label("Connection ID").fill(conn_id)
    host = dialog.get_by_label("API Base URL", exact=True)
    expect(host).to_have_attribute("placeholder", API_BASE_URL_PLACEHOLDER)
    expect(dialog.get_by_label("Client Secret", exact=True)).to_have_attribute("type", "password")
    for hidden in ("port", "schema"):
        expect(dialog.locator(f'[name="{hidden}"]')).to_have_count(0)
    for default_label in ("Host", "Login", "Password", "Port", "Schema"):
        expect(dialog.get_by_text(default_label, exact=True)).to_have_count(0)
    host.fill(emulator.url)
    dialog.get_by_label("Client ID", exact=True).fill(emulator.client_id)
    dialog.get_by_label("Client Secret", exact=True).fill(secret)


def fill_extra_fields(dialog, values: dict[str, str]) -> None:
    """Opens "Extra Fields", checks every field of the provider metadata, fills ``values``."""
    from playwright.sync_api import expect

    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for name, spec in CONNECTION_EXTRA_FIELDS.items():
        expect(dialog.locator("label", has_text=spec["label"]).first).to_be_visible()
        expect(dialog.get_by_text(spec["description"], exact=True)).to_be_visible()
        expect(dialog.locator(f'[name="element_{name}"]')).to_have_count(1)
    expect(dialog.locator('[name="element_auth_type"]')).to_have_value("m2m")
    expect(dialog.locator('[name="element_auth_url"]')).to_have_value(DEFAULT_AUTH_URL)
    for name, value in values.items():
        dialog.locator(f'input[name="element_{name}"]').fill(value)


def save_and_test(page, dialog, conn_id: str):
    """Save, press the row's Test Connection button; returns the toast that answered."""
    from playwright.sync_api import expect

    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
    expect(row).to_have_count(1)
    page.route("**/api/v2/connections/test", send_a_null_port)
    row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=re.compile("Test Connection (Successful|Failed)"))
    expect(toast).to_have_count(1)
    return toast


def stored_connection(page, conn_id: str) -> dict:
    """The connection as the REST API returns it (secrets redacted)."""
    response = page.request.get(f"/api/v2/connections/{conn_id}")
    assert response.ok, response.text()
    return response.json()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def side_by_side(browser, images: list[Path], out: Path, gap: int = 16) -> None:
    """One picture of the two halves of the form (the UI opens one accordion section at a time)."""
    sizes = [png_size(path) for path in images]
    width = sum(w for w, _ in sizes) + gap * (len(images) + 1)
    height = max(h for _, h in sizes) + 2 * gap
    cells = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">' for path in images
    )
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.set_content(
            f"<body style='margin:0;background:#e8ebf0'><div style='display:flex;gap:{gap}px;"
            f"padding:{gap}px;align-items:flex-start'>{cells}</div></body>"
        )
        page.screenshot(path=str(out))
    finally:
        page.close()


def test_carto_form_saves_and_tests_successfully(page, browser, ui_emulator):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialog = open_add_connection_form(page)
    fill_standard_fields(dialog, "carto_ui", ui_emulator, ui_emulator.client_secret)
    dialog.get_by_role("heading", name="Add Connection").click()  # no focus ring in the picture
    standard_png = ARTIFACTS / "connection-form-standard.png"
    dialog.screenshot(path=str(standard_png))
    # What a user would type (the picture goes into the README); ~ is the test's private HOME.
    fill_extra_fields(dialog, {"auth_url": ui_emulator.url, "cache_dir": "~/.carto-auth"})
    dialog.get_by_role("heading", name="Add Connection").click()
    extra_png = ARTIFACTS / "connection-form-extra.png"
    dialog.screenshot(path=str(extra_png))
    side_by_side(browser, [standard_png, extra_png], ARTIFACTS / "connection-form.png")

    toast = save_and_test(page, dialog, "carto_ui")

    from playwright.sync_api import expect

    expect(toast).to_contain_text("Test Connection Successful")
    expect(toast).to_contain_text(f"Connected to CARTO at {ui_emulator.url}")
    assert ui_emulator.calls("GET /v3/connections") == 1  # the API server really called CARTO
    assert ui_emulator.token_requests() == 1
    stored = stored_connection(page, "carto_ui")
    assert (stored["conn_type"], stored["host"], stored["login"]) == (
        "carto",
        ui_emulator.url,
        ui_emulator.client_id,
    )
    assert json.loads(stored["extra"])["auth_url"] == ui_emulator.url
    assert json.loads(stored["extra"])["auth_type"] == "m2m"
    assert ui_emulator.client_secret not in page.content()


def test_carto_form_with_a_wrong_secret_fails_the_test_and_says_what_to_fix(page, ui_emulator, tmp_path):
    from playwright.sync_api import expect

    dialog = open_add_connection_form(page)
    fill_standard_fields(dialog, "carto_ui_wrong_secret", ui_emulator, WRONG_SECRET)
    fill_extra_fields(dialog, {"auth_url": ui_emulator.url, "cache_dir": str(tmp_path / "token-cache")})
    toast = save_and_test(page, dialog, "carto_ui_wrong_secret")
    expect(toast).to_contain_text("Test Connection Failed")
    expect(toast).to_contain_text("Authentication failed: CARTO refused the client credentials")
    expect(toast).to_contain_text("Check the client id and client secret")
    assert WRONG_SECRET not in page.content()
