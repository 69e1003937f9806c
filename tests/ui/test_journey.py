"""The whole journey in a real headless Chromium, as a first-time user would make it.

record (Chromium's fake microphone plays a clip of ../shared/voices) + upload → prepare → proofread a clip →
train both stages for a few steps and watch the loss plot fill in → add the voice → synthesize two takes →
blind A/B pick → export the voice pack and download the zip → switch the UI language.
A screenshot of every step goes to ``test-artifacts/screenshots/journey_*.png``.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from .conftest import SCREENSHOTS as SHOTS
from .conftest import export_voice_pack, open_studio

pytestmark = pytest.mark.slow

PROJECT = "my-voice"
VOICE = "joe"
UPLOADS = 4  # en_joe clips uploaded next to the microphone take: about 25 s in all (training needs 20 s)


def _wait_text(page, selector: str, text: str, timeout_s: float) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
        arg=[selector, text],
        timeout=timeout_s * 1000,
        polling=500,
    )


def _coloured_pixels(png: bytes) -> int:
    """Pixels that are clearly not grey (plot lines are coloured; axes, grid and text are grey)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if max(r, g, b) - min(r, g, b) > 60)


def _record_and_upload(page, voices, screenshot) -> None:
    picker = page.locator("#project-picker input")
    picker.fill(PROJECT)
    picker.press("Enter")
    _wait_text(page, "#rec-summary", "No takes yet", 20)
    mic = page.locator("#rec-mic")
    mic.get_by_role("button", name="Record").click()
    page.wait_for_timeout(4000)
    mic.get_by_role("button", name="Stop").click()
    _wait_text(page, "#rec-levels", "dBFS", 30)  # level feedback of the take
    page.wait_for_function("!document.querySelector('#rec-keep').disabled", timeout=15_000)
    page.locator("#rec-keep").click()
    _wait_text(page, "#rec-summary", "1 take(s)", 30)
    clips = sorted((voices / "en_joe" / "clips").glob("*.wav"))[1 : 1 + UPLOADS]
    page.locator("#rec-upload input[type=file]").set_input_files([str(c) for c in clips])
    _wait_text(page, "#rec-summary", f"{1 + UPLOADS} take(s)", 60)
    screenshot(page, "journey_1_record")


def _prepare_and_proofread(page, workspace, screenshot) -> None:
    page.get_by_role("tab", name="Prepare").click()
    page.wait_for_function("!document.querySelector('#prep-run').disabled", timeout=20_000)
    page.locator("#prep-preview-cuts").click()
    _wait_text(page, "#prep-cuts-text", "clip(s)", 60)
    language = page.locator("#prep-language input")
    language.fill("English")
    language.press("Enter")
    page.locator("#prep-run").click()
    _wait_text(page, "#prep-summary", "in the dataset", 300)
    _wait_text(page, "#prep-lint", "Usable speech", 30)
    # proofread: open the first clip, correct its text, save
    page.locator("#prep-list table").last.locator("tbody tr").first.locator("td").nth(3).click()
    page.wait_for_function("!document.querySelector('#prep-clip-text textarea').disabled", timeout=20_000)
    page.locator("#prep-clip-text textarea").fill("A corrected sentence for the first clip.")
    page.locator("#prep-save-text").click()
    _wait_text(page, "#prep-list", "A corrected sentence", 30)
    listed = (workspace / PROJECT / "dataset.list").read_text(encoding="utf-8")
    assert "A corrected sentence for the first clip." in listed  # saved in the workspace, not just the page
    screenshot(page, "journey_2_prepare")


def _train(page, workspace, screenshot) -> None:
    page.get_by_role("tab", name="Train").click()
    _wait_text(page, "#train-readiness", "clip(s)", 30)
    assert page.locator("#train-start").is_disabled() is False
    page.get_by_text("Advanced").click()
    steps = page.locator("#train-max-steps input")
    steps.fill("2")
    steps.press("Tab")
    _wait_text(page, "#train-readiness", "stops after 2 step", 30)
    page.locator("#train-consent input").check()
    page.locator("#train-speaker textarea, #train-speaker input").first.fill("Joe Tester")
    plot = page.locator("#train-plot-gpt canvas")
    before_png = plot.screenshot() if plot.count() else b""
    before = _coloured_pixels(before_png) if before_png else 0
    if before_png:  # no canvas yet means an empty plot: nothing to save
        (SHOTS / "journey_plot_before.png").write_bytes(before_png)
    page.locator("#train-start").click()
    _wait_text(page, "#train-status", ": epoch", 180)  # the timer brought the first steps
    _wait_text(page, "#train-status", "Stage 2 (SoVITS)", 300)  # stage 1 done: its curve has every step
    page.wait_for_timeout(2500)
    after_png = page.locator("#train-plot-gpt canvas").screenshot()
    (SHOTS / "journey_plot_after.png").write_bytes(after_png)
    after = _coloured_pixels(after_png)
    assert after > before + 50, f"the GPT loss plot did not fill in ({before} → {after} coloured pixels)"
    screenshot(page, "journey_3_train_running")
    _wait_text(page, "#train-status", "Training finished", 400)
    page.wait_for_function("!document.querySelector('#train-add-voice').disabled", timeout=30_000)
    assert page.locator("#train-samples input").input_value()  # a per-epoch sample to listen to
    _wait_text(page, "#train-epochs-summary", "Recommended: epoch", 60)  # epochs compared by listening
    table = page.locator("#train-epochs").inner_text()
    assert "similarity" in table and "CER" in table and "★" in table, table
    assert "recommended" in page.locator("#train-epoch-pick input").input_value()
    consent = json.loads((workspace / PROJECT / "consent.json").read_text(encoding="utf-8"))
    assert consent["speaker_name"] == "Joe Tester" and consent["confirmed"] is True
    page.locator("#train-voice-name textarea, #train-voice-name input").first.fill(VOICE)
    page.locator("#train-add-voice").click()
    _wait_text(page, "#train-added", VOICE, 180)
    assert (workspace / "voices" / VOICE / "voice.json").is_file()
    added = json.loads((workspace / "voices" / VOICE / "voice.json").read_text(encoding="utf-8"))
    assert added["training"]["epoch_choice"]["recommended"] is True  # the recommended epoch, as nobody picked
    screenshot(page, "journey_3_train")


def _synthesize_and_pick(page, screenshot) -> None:
    page.get_by_role("tab", name="Synthesize").click()
    voice = page.locator("#synth-voice input")
    voice.click()
    voice.fill(VOICE)
    voice.press("Enter")
    page.locator("#synth-text textarea").fill("Hello there.")
    page.get_by_text("Voice settings").click()
    box = page.locator("#synth-max-s input[type=number]")
    box.fill("2")
    box.press("Enter")
    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=30_000)
    page.locator("#synth-generate").click()
    _wait_text(page, "#synth-batch", "Best", 300)
    screenshot(page, "journey_4_synthesize")
    page.locator("#ab-start").click()
    page.wait_for_function("!document.querySelector('#ab-pick-a').disabled", timeout=30_000)
    page.locator("#ab-pick-b").click()
    _wait_text(page, "#ab-result", "B was", 30)
    screenshot(page, "journey_5_ab")


def _export(page, screenshot) -> None:
    page.get_by_role("tab", name="Voices").click()
    _wait_text(page, "#voices-table", VOICE, 30)
    # the consent given on the Train tab is already filled in
    page.wait_for_function(
        "document.querySelector('#consent-speaker textarea')?.value === 'Joe Tester'", timeout=30_000
    )
    screenshot(page, "journey_6_voices_prefilled")
    with zipfile.ZipFile(export_voice_pack(page, "Joe Tester", 180_000)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["name"] == VOICE
    assert manifest["consent"]["speaker_name"] == "Joe Tester"
    screenshot(page, "journey_6_voices")


def _switch_language(page, screenshot) -> None:
    page.get_by_role("tab", name="Models & Settings").click()
    page.locator("#ui-language").get_by_text("中文").click()
    page.get_by_role("tab", name="合成").wait_for(timeout=30_000)
    page.get_by_role("tab", name="合成").click()
    _wait_text(page, "#synth-history", "误识率", 30)  # the take table follows the switch without a reload
    screenshot(page, "journey_7_synthesize_zh")
    page.get_by_role("tab", name="声音").click()
    _wait_text(page, "#voices-table", "来源", 30)
    screenshot(page, "journey_7_voices_zh")
    page.get_by_role("tab", name="训练").click()
    _wait_text(page, "#train-intro", "训练你的声音", 30)  # this tab's own texts follow the switch
    screenshot(page, "journey_7_train_zh")
    page.locator("[role=tab]").first.click()
    _wait_text(page, "#rec-intro", "录下你的声音", 30)
    screenshot(page, "journey_7_record_zh")


def test_whole_journey(start_webui, page, voices, screenshot):
    server = start_webui()
    open_studio(page, server.url)
    _record_and_upload(page, voices, screenshot)
    _prepare_and_proofread(page, server.workspace, screenshot)
    _train(page, server.workspace, screenshot)
    _synthesize_and_pick(page, screenshot)
    _export(page, screenshot)
    _switch_language(page, screenshot)
