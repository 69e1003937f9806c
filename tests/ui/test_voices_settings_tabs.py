"""Voices and Models & Settings tabs in a real browser, plus the translation tables.

Export a voice pack and download the zip; delete needs a confirmation; switching the UI language re-labels the
page at once and survives a reload; a screenshot of every tab goes to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from .conftest import export_voice_pack, open_studio

TAB_NAMES = ["Record & Upload", "Prepare", "Train", "Synthesize", "Voices", "Models & Settings"]


@pytest.fixture(scope="module")
def studio_with_voice(start_webui, tmp_path_factory, tiny_s1_ckpt: Path, tiny_s2_pth: Path, voices: Path):
    """A server whose library holds one voice, imported from the tiny official files."""
    from studio.services.studio import Studio
    from studio.settings import StudioSettings

    workspace = tmp_path_factory.mktemp("voices-ws")
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    studio = Studio(StudioSettings(workspace=workspace))
    studio.voice_packs.import_voice(
        [tiny_s1_ckpt, tiny_s2_pth, clip], name="joe", reference_text="Hello.", reference_lang="en"
    )
    return start_webui(workspace)


@pytest.mark.slow
def test_export_pack_delete_and_screenshots(studio_with_voice, page, screenshot):
    server = studio_with_voice
    open_studio(page, server.url)
    for name in TAB_NAMES:  # every tab renders without an error toast
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(400)
        screenshot(page, "tab_" + name.lower().replace(" & ", "_").replace(" ", "_"))
        assert page.locator(".toast-body").count() == 0, f"error shown on tab {name}"

    page.get_by_role("tab", name="Voices").click()
    assert "joe" in page.locator("#voices-table").inner_text()
    with zipfile.ZipFile(export_voice_pack(page, "Joe Example", 120_000)) as zf:
        assert "manifest.json" in zf.namelist()

    page.locator("#voices-delete").click()  # asks first
    page.locator("#voices-delete-yes").wait_for(state="visible")
    assert (server.workspace / "voices" / "joe").is_dir()
    page.locator("#voices-delete-yes").click()
    page.wait_for_function("!document.querySelector('#voices-table').innerText.includes('joe')", timeout=30_000)
    assert not (server.workspace / "voices" / "joe").exists()


@pytest.mark.slow
def test_language_switch_is_live_and_kept_after_reload(start_webui, page, screenshot):
    server = start_webui()
    open_studio(page, server.url)
    page.get_by_role("tab", name="Models & Settings").click()
    page.locator("#ui-language").get_by_text("中文").click()
    page.get_by_role("tab", name="合成").wait_for(timeout=30_000)  # tab labels re-rendered in Chinese
    # texts written by handlers follow the switch too, without a reload
    page.wait_for_function("document.querySelector('#models-summary')?.innerText.includes('基础文件')", timeout=30_000)
    screenshot(page, "settings_zh")
    page.reload()
    open_studio(page, server.url)
    page.get_by_role("tab", name="模型与设置").click()
    page.get_by_text("界面语言").first.wait_for(timeout=30_000)
    assert '"ui_language": "zh"' in (server.workspace / "settings.json").read_text(encoding="utf-8")
    page.locator("#ui-language").get_by_text("日本語").click()
    page.get_by_role("tab", name="声", exact=True).wait_for(timeout=30_000)
    page.get_by_role("tab", name="合成").click()
    page.wait_for_timeout(800)
    screenshot(page, "synthesize_ja")
    page.get_by_role("tab", name="モデルと設定").click()
    page.locator("#ui-language").get_by_text("English").click()
    page.get_by_role("tab", name="Voices").wait_for(timeout=30_000)


def test_every_ui_string_has_chinese_and_japanese(tmp_path):
    """Build the app and check that every registered English key has a translation in zh and ja."""
    from studio.services.studio import Studio
    from studio.settings import StudioSettings
    from studio.ui import context
    from studio.ui.app import build_app

    made: list = []
    original = context.UIContext.create

    def spy(studio):
        ui = original(studio)
        made.append(ui)
        return ui

    context.UIContext.create = staticmethod(spy)
    try:
        build_app(Studio(StudioSettings(workspace=tmp_path, pretrained=tmp_path / "none")))
    finally:
        context.UIContext.create = original
    ui = made[0]
    assert len(ui.translatables) > 50
    import json

    from studio.ui.i18n import LOCALES_DIR

    # the shell's strings (en.json); the Record/Prepare/Train tabs keep theirs in <tab>.<lang>.json
    english = json.loads((LOCALES_DIR / "en.json").read_text(encoding="utf-8"))
    assert len(english) > 100
    for lang in ("zh", "ja"):
        missing = sorted(k for k in ui.used_keys if k in english and k not in ui.i18n.tables[lang])
        assert not missing, f"untranslated {lang} strings: {missing[:10]}"


def test_preferences_ignore_the_os_locale(tmp_path, monkeypatch):
    from studio.ui.i18n import I18n, Preferences

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    prefs = Preferences(tmp_path)
    assert prefs.language == "en"  # the default is English, whatever the OS says
    prefs.language = "ja"
    assert Preferences(tmp_path).language == "ja"
    assert I18n().t("Generate", "ja") == "生成"
    assert I18n().t("{n} take(s) ready.", "zh", n=2) == "已生成 2 条。"
    with pytest.raises(ValueError):
        prefs.language = "xx"


def test_missing_base_models_are_announced_with_the_fix(start_webui, page, tmp_path):
    """A fresh install without weights: the terminal and the page both say what is missing and how to get it."""
    server = start_webui(pretrained=tmp_path / "empty-pretrained")
    assert "studio download" in server.log_text() and "s2G2333k.pth" in server.log_text()
    open_studio(page, server.url)
    banner = page.locator("#models-missing")
    banner.wait_for(state="visible", timeout=30_000)
    text = banner.inner_text()  # the page names its own button, not a terminal command
    assert "Download missing files" in text and "Models & Settings" in text and "studio download" not in text
    page.locator("#models-missing-open").click()  # … and takes the user there
    page.locator("#models-download").wait_for(state="visible", timeout=30_000)
    page.wait_for_function("document.querySelector('#models-download').getBoundingClientRect().top < innerHeight")


def test_a_complete_v2proplus_base_alone_raises_no_missing_models_banner(
    start_webui, page, tiny_v2proplus_pretrained
):
    """No v2 files but a complete v2ProPlus base: nothing is missing, neither in the terminal nor on the page."""
    server = start_webui(pretrained=tiny_v2proplus_pretrained)
    open_studio(page, server.url)
    page.get_by_role("tab", name="Synthesize").click()  # the page has loaded and run its on-load checks
    page.wait_for_selector("#synth-text textarea", state="visible")
    page.wait_for_timeout(1500)
    assert not page.locator("#models-missing").is_visible()
    assert not page.locator("#models-missing-open").is_visible()
    assert "Base models are missing" not in server.log_text()


def test_http_api_runs_alongside_the_studio(start_webui):
    """`webui.py --api PORT` serves the api_v2/OpenAI API next to the UI, on the same models."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_webui(extra_args=("--api", str(port)))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as response:
                models = json.load(response)
            break
        except OSError:
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.5)
    assert models["data"], models
    assert f"http://127.0.0.1:{port}" in server.log_text()


@pytest.mark.slow
def test_pronunciations_are_checked_saved_and_used_by_the_preview(start_webui, page, screenshot):
    server = start_webui()
    open_studio(page, server.url)
    page.get_by_role("tab", name="Models & Settings").click()
    box = page.locator("#pron-text textarea")
    box.wait_for(state="visible")
    assert "language | word" in box.input_value()  # a commented template to start from

    box.fill("en | SoVITS | S OW1 V IX T S")  # a typo: refused, nothing saved
    page.locator("#pron-save").click()
    toast = page.locator(".toast-body").first
    toast.wait_for(state="visible", timeout=30_000)
    assert "IX is not an ARPAbet phone" in toast.inner_text()
    assert not (server.workspace / "pronunciations.txt").exists()

    box.fill("en | SoVITS | S OW1 V IH0 T S")
    page.locator("#pron-save").click()
    page.wait_for_function("document.querySelector('#pron-status')?.innerText.includes('Saved: 1 English')")
    screenshot(page, "settings_pronunciations")
    assert "S OW1 V IH0 T S" in (server.workspace / "pronunciations.txt").read_text(encoding="utf-8")

    page.get_by_role("tab", name="Synthesize").click()
    page.locator("#synth-text textarea").fill("I use SoVITS daily.")
    page.get_by_role("button", name="How it will be read").click()
    page.locator("#synth-reading-btn").click()
    page.wait_for_function("document.querySelector('#synth-reading')?.innerText.includes('S OW1 V IH0 T S')")

    page.reload()  # the saved list comes back in the editor
    open_studio(page, server.url)
    page.get_by_role("tab", name="Models & Settings").click()
    assert page.locator("#pron-text textarea").input_value().strip() == "en | SoVITS | S OW1 V IH0 T S"
