"""Browser fixtures: ``webui.py`` in a subprocess with tiny models, driven by Debian's headless Chromium.

Fixtures (shared with every UI test):

* ``ui_pretrained`` — a ``pretrained/`` folder in upstream's layout whose files are symlinks to the tiny golden
  models (GPT, SoVITS, HuBERT, BERT).
* ``start_webui(workspace=None, pretrained=None)`` — factory: starts ``webui.py --no-browser`` on a free localhost port with
  ``--pretrained ui_pretrained`` and returns a :class:`WebUI` (``.url``, ``.workspace``, ``.log_text()``).
* ``webui`` — one such server for the whole session (its own temp workspace).
* ``browser`` — Playwright's Chromium from ``/usr/bin/chromium`` (never ``playwright install``), launched with
  the fake-microphone flags playing ``fake_mic_wav`` (a clip from ``../shared/voices``).
* ``page`` — a fresh 1400×1000 page in that browser; ``open_studio(page, url)`` loads the app and waits for it.
* ``screenshot(page, name)`` — saves ``test-artifacts/screenshots/<name>.png``.

Skipped (with the reason) when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WebUI:
    url: str
    workspace: Path
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def ui_pretrained(tmp_path_factory, golden: Path, tiny_s1_ckpt: Path, tiny_s2_pth: Path) -> Path:
    from studio import pretrained as layout

    root = tmp_path_factory.mktemp("pretrained")
    links = {
        layout.HUBERT_DIR: golden / "hf_tiny_hubert",
        layout.BERT_DIR: golden / "hf_tiny_bert",
        layout.GPT_V2: tiny_s1_ckpt,
        layout.SOVITS_V2: tiny_s2_pth,
    }
    for rel, source in links.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
    return root


@pytest.fixture(scope="session")
def start_webui(tmp_path_factory, ui_pretrained: Path):
    servers: list[WebUI] = []

    def start(workspace: Path | None = None, pretrained: Path | None = None, extra_args: tuple[str, ...] = ()) -> WebUI:
        workspace = workspace or tmp_path_factory.mktemp("workspace")
        port = _free_port()
        log = tmp_path_factory.mktemp("webui-log") / "webui.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        cmd = [
            sys.executable,
            str(REPO_ROOT / "webui.py"),
            "--no-browser",
            "--port",
            str(port),
            "--workspace",
            str(workspace),
            "--pretrained",
            str(pretrained or ui_pretrained),
            *extra_args,
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        server = WebUI(f"http://127.0.0.1:{port}", workspace, process, log)
        servers.append(server)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"webui.py exited with {process.returncode}:\n{server.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(server.url, timeout=2) as response:
                    if response.status == 200:
                        return server
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"webui.py did not serve a page within {START_TIMEOUT_S} s:\n{server.log_text()[-3000:]}")

    yield start
    for server in servers:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()


@pytest.fixture(scope="session")
def webui(start_webui) -> WebUI:
    return start_webui()


@pytest.fixture(scope="session")
def fake_mic_wav(voices: Path, tmp_path_factory) -> Path:
    """A 16-bit PCM WAV for Chromium's fake microphone (it plays the file in a loop)."""
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    target = tmp_path_factory.mktemp("mic") / "mic.wav"
    shutil.copyfile(clip, target)
    return target


@pytest.fixture(scope="session")
def browser(fake_mic_wav: Path):
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    # Playwright gives every launch a fresh temporary profile itself (it refuses --user-data-dir here).
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic_wav}",
    ]
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.grant_permissions(["microphone"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def open_studio(page, url: str) -> None:
    """Load the studio and wait until the page-load events have filled it in."""
    page.goto(url)
    page.wait_for_selector("#studio-loaded", state="attached", timeout=60_000)
    page.wait_for_timeout(500)  # let the other load events paint


def export_voice_pack(page, speaker: str, timeout_ms: int):
    """On the Voices tab: give consent as ``speaker``, export the selected voice, download the pack; its path."""
    page.locator("#consent-speaker textarea").fill(speaker)
    page.locator("#consent-statement textarea").fill("I agree that my voice may be shared.")
    page.locator("#consent-ok input[type=checkbox]").check()
    page.locator("#voices-export").click()
    link = page.locator("#voices-pack-file a").first
    link.wait_for(state="visible", timeout=timeout_ms)
    with page.expect_download() as download:
        link.click()
    return download.value.path()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
