"""The connection form and the Providers page, as Airflow's UI gets them from a real api-server."""

from __future__ import annotations

import json
import re

import pytest
import requests
from playwright.sync_api import expect

from airflow_provider_videoinfer import _CONNECTION_FIELDS


def _get(api_server, path: str) -> dict | list:
    headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
    answer = requests.get(api_server.base_url + path, headers=headers, timeout=30)
    answer.raise_for_status()
    return answer.json()


def test_hook_meta_has_the_form_of_the_videoinfer_connection(api_server):
    meta = {entry["connection_type"]: entry for entry in _get(api_server, "/ui/connections/hook_meta")}
    form = meta["videoinfer"]
    assert form["hook_name"] == "Video Inference"
    fields = form["standard_fields"]
    assert fields["login"]["hidden"] and fields["url_schema"]["hidden"]
    assert fields["password"]["title"] == "API Key" and fields["password"]["placeholder"]
    assert fields["host"]["title"] == "Base URL" and "https://api.roboflow.com" in fields["host"]["placeholder"]
    assert fields["port"]["hidden"] is False and fields["port"]["placeholder"]
    extra = form["extra_fields"]
    assert set(extra) == set(_CONNECTION_FIELDS)
    assert extra["read_timeout"]["schema"]["title"] == "Read timeout (s)"
    assert extra["read_timeout"]["value"] == 60 and extra["retry_max_attempts"]["schema"]["type"] == "integer"


def test_providers_page_links_to_the_documentation(api_server):
    providers = _get(api_server, "/api/v2/providers")["providers"]
    ours = next(p for p in providers if p["package_name"] == "airflow-provider-videoinfer")
    assert ours["documentation_url"].startswith("https://github.com/") and ours["documentation_url"].endswith("#readme")
    assert "video inference" in ours["description"].lower()


def test_providers_page_in_the_browser(page, api_server):
    page.goto(f"{api_server.base_url}/providers")
    link = page.get_by_role("link", name="airflow-provider-videoinfer")
    expect(link).to_have_attribute("href", re.compile(r"^https://github\.com/.+#readme$"))


def test_connection_form_in_the_browser(page, api_server):
    page.goto(f"{api_server.base_url}/connections")
    page.get_by_role("button", name=re.compile("Add Connection", re.I)).click()
    # The type list shows the provider's name rather than the raw type.
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.get_by_role("combobox").fill("Video")
    dialog.get_by_text("Video Inference", exact=True).last.click()
    dialog.get_by_text("Standard Fields").wait_for()
    for label in ("Base URL", "API Key", "Port"):
        expect(dialog.get_by_text(label, exact=True).first).to_be_visible()
    text = dialog.inner_text()
    assert "Login" not in text and "Schema" not in text and "videoinfer" not in text
    assert dialog.get_by_placeholder(re.compile("api.roboflow.com")).is_visible()
    assert dialog.get_by_placeholder("your workspace API key").is_visible()
    dialog.get_by_text("Extra Fields", exact=True).click()
    for label, description, _, _ in _CONNECTION_FIELDS.values():
        expect(dialog.get_by_text(label).first).to_be_visible()
        expect(dialog.get_by_text(description).first).to_be_visible()


def test_a_connection_saved_from_the_form_is_one_the_hook_reads(page, api_server):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_videoinfer.hooks.videoinfer import ClientSettings

    page.goto(f"{api_server.base_url}/connections")
    page.get_by_role("button", name=re.compile("Add Connection", re.I)).click()
    dialog = page.locator("[role=dialog][data-state=open]")
    dialog.locator("input[name=connection_id]").fill("videoinfer_from_form")
    dialog.get_by_role("combobox").fill("Video")
    dialog.get_by_text("Video Inference", exact=True).last.click()
    dialog.locator("input[name=host]").fill("http://127.0.0.1:9050")
    dialog.locator("input[name=password]").fill("form-typed-key")
    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.locator("input[name=element_read_timeout]").fill("30")
    dialog.locator("input[name=element_retry_max_attempts]").fill("8")
    dialog.locator("input[name=element_retry_max_attempts]").blur()
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections") and r.request.method == "POST") as saved:
        dialog.get_by_role("button", name="Save").click()
    assert saved.value.status == 201, saved.value.text()
    try:
        with create_session() as session:
            conn = session.query(Connection).filter_by(conn_id="videoinfer_from_form").one()
            settings = ClientSettings.from_connection(conn)
        assert settings.base_url == "http://127.0.0.1:9050" and settings.api_key == "form-typed-key"
        assert settings.read_timeout == 30 and settings.retry.max_attempts == 8 and settings.connect_timeout == 10
    finally:
        headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
        requests.delete(f"{api_server.base_url}/api/v2/connections/videoinfer_from_form", headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("host", "extra", "message"),
    [
        ("http://127.0.0.1:9", {"read_timout": 5}, "unknown key 'read_timout' (did you mean 'read_timeout'?)"),
        ("http://127.0.0.1:9/v1?tenant=a", {}, "holds a query or fragment"),
        ("http://admin:hunter2@127.0.0.1:9", {}, "holds a user name or password"),
    ],
)
def test_the_test_button_says_what_is_wrong_with_the_connection(api_server, host, extra, message):
    """What the connection form's Test button sends (POST /api/v2/connections/test) gets a sentence back.

    (An extra that is no JSON object never gets this far: Airflow's API refuses it with a 422.)
    """
    headers = {"Authorization": f"Bearer {api_server.token('admin')}"}
    body = {
        "connection_id": "videoinfer_test_button",
        "conn_type": "videoinfer",
        "host": host,
        "password": "form-typed-key",
        "extra": json.dumps(extra),
    }
    answer = requests.post(f"{api_server.base_url}/api/v2/connections/test", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is False and message in result["message"], result
    assert "form-typed-key" not in result["message"] and "hunter2" not in result["message"]
