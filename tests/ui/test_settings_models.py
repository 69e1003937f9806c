"""Models & Settings in a real browser: every file row shows, a failed download keeps its cause and fix (with
``<`` ``>`` shown as written) under a title that names the kind of error, and an existing models folder can be
chosen in the page (checked, kept after a restart, and named as the folder in use)."""

from __future__ import annotations

import json
import socket

import pytest

from studio import pretrained as layout

from .conftest import open_studio


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.slow
def test_file_table_failed_download_and_models_folder(start_webui, page, tmp_path, ui_pretrained, screenshot):
    workspace = tmp_path / "ws"
    server = start_webui(workspace=workspace, pretrained=tmp_path / "empty")
    open_studio(page, server.url)
    page.get_by_role("tab", name="Models & Settings").click()
    rows = page.locator("#models-table tbody tr")
    rows.first.wait_for(timeout=30_000)
    assert rows.count() == len(layout.ALL_FILES)  # every version's files, shared ones once
    for i in range(rows.count()):  # each row is rendered and visible, not only the first few
        assert rows.nth(i).is_visible() and rows.nth(i).inner_text().strip()
    assert layout.SOVITS_V2 in page.locator("#models-table").inner_text()

    page.get_by_text("Other address").click()
    page.locator("input[placeholder='https://…'], textarea[placeholder='https://…']").fill(
        f"http://127.0.0.1:{_closed_port()}"
    )
    page.locator("#models-download").click()
    toast = page.locator(".toast-body").first
    toast.wait_for(state="visible", timeout=60_000)
    text = toast.inner_text()
    screenshot(page, "settings_download_failed")
    assert "Download failed" in text and "Cannot do that yet" not in text
    assert "<urlopen error" in text and ">" in text  # the cause, as written
    assert "Press Download again" in text and "HF_ENDPOINT" not in text  # the fix, in the page's terms
    page.locator(".toast-close").first.click()

    box = page.locator("#models-folder textarea, #models-folder input").first
    box.fill(str(tmp_path))  # a folder without any base file: refused, nothing changes
    page.locator("#models-folder-use").click()
    refused = page.locator(".toast-body", has_text="none of the base model files").first
    refused.wait_for(state="visible", timeout=30_000)
    assert str(tmp_path) not in refused.inner_text()  # the folder's name, not its absolute path
    settings = workspace / "settings.json"
    assert not settings.exists() or "pretrained_dir" not in settings.read_text(encoding="utf-8")
    box.fill(str(ui_pretrained))
    page.locator("#models-folder-use").click()
    page.wait_for_function(
        "document.querySelector('#models-summary')?.innerText.includes('All required base files are present')"
    )
    assert str(ui_pretrained.resolve()) in page.locator("#models-summary").inner_text()
    saved = json.loads((workspace / "settings.json").read_text(encoding="utf-8"))
    assert saved["pretrained_dir"] == str(ui_pretrained.resolve())
