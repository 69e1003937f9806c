"""Models & Settings in a real browser: every file row shows, a failed download keeps its cause and fix (with
``<`` ``>`` shown as written) under a title that names the kind of error, and an existing models folder can be
chosen in the page (checked, kept after a restart, and named as the folder in use)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading

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


class _WhisperHub(http.server.BaseHTTPRequestHandler):
    """A stand-in hub on 127.0.0.1 serving a fake faster-whisper-tiny (small files, sha256 for model.bin)."""

    files = {name: name.encode() * 64 for name in layout.ASR_MODELS["whisper-tiny"].files}

    def do_GET(self):  # noqa: N802 - http.server API
        rel = self.path.removeprefix("/Systran/faster-whisper-tiny/resolve/main/")
        if rel not in self.files:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("X-Linked-ETag", f'"{hashlib.sha256(self.files[rel]).hexdigest()}"')
        self.send_header("Content-Length", str(len(self.files[rel])))
        self.end_headers()
        self.wfile.write(self.files[rel])

    def log_message(self, *args):
        pass


def _pick(page, label_start: str) -> None:
    page.locator("#asr-model input").click()
    page.get_by_role("option").filter(has_text=label_start).first.click()


@pytest.mark.slow
def test_whisper_model_choice_refusal_and_download(start_webui, page, tmp_path, ui_pretrained):
    """A downloaded larger model is chosen and kept; a partly downloaded one is refused with what to do; a
    download from the chosen source (a local stand-in hub) completes the model and chooses it."""
    models = tmp_path / "models"
    for entry in ui_pretrained.iterdir():
        (models / entry.name).parent.mkdir(parents=True, exist_ok=True)
        (models / entry.name).symlink_to(entry.resolve())
    small = models / "asr" / "whisper-small"
    small.mkdir(parents=True)
    for name in layout.ASR_MODELS["whisper-small"].files:
        (small / name).write_bytes(b"{}")
    (models / "asr" / "whisper-medium").mkdir()
    (models / "asr" / "whisper-medium" / "model.bin.part").write_bytes(b"half")
    workspace = tmp_path / "ws"
    server = start_webui(workspace=workspace, pretrained=models)
    settings = workspace / "settings.json"
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WhisperHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        open_studio(page, server.url)
        page.get_by_role("tab", name="Models & Settings").click()
        status = page.locator("#asr-status")
        status.get_by_text("base").wait_for(timeout=30_000)  # the packaged default is in use
        _pick(page, "small")
        page.wait_for_function("document.querySelector('#asr-status').innerText.includes('small')")
        assert json.loads(settings.read_text(encoding="utf-8"))["asr_model"] == "whisper-small"
        _pick(page, "medium")
        page.wait_for_function("document.querySelector('#asr-status').innerText.includes('not downloaded')")
        assert json.loads(settings.read_text(encoding="utf-8"))["asr_model"] == "whisper-small"  # unchanged

        page.get_by_text("Other address").click()
        page.locator("input[placeholder='https://…'], textarea[placeholder='https://…']").fill(
            f"http://127.0.0.1:{hub.server_address[1]}"
        )
        _pick(page, "tiny")
        page.locator("#asr-download").click()
        page.wait_for_function(
            "document.querySelector('#asr-status').innerText.includes('use the tiny model')", timeout=60_000
        )
    finally:
        hub.shutdown()
    tiny = models / "asr" / "whisper-tiny"
    assert {p.name: p.read_bytes() for p in tiny.iterdir()} == _WhisperHub.files
    assert json.loads(settings.read_text(encoding="utf-8"))["asr_model"] == "whisper-tiny"
