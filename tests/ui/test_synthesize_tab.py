"""Synthesize tab in a real browser: two takes → blind A/B pick → the history survives a reload; errors are shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import open_studio

pytestmark = pytest.mark.slow

TEXT = "Hello there."  # English: the tiny BERT cannot feed the tiny GPT, and English needs no BERT


def _go_to_synthesize(page) -> None:
    page.get_by_role("tab", name="Synthesize").click()
    page.wait_for_selector("#synth-text textarea", state="visible")


def _fill_zero_shot(page, clip, text: str) -> None:
    page.locator("#synth-ref-audio input[type=file]").set_input_files(str(clip))
    page.wait_for_selector("#synth-ref-audio audio, #synth-ref-audio .waveform-container", state="attached")
    page.locator("#synth-ref-text textarea").fill("A short sentence.")
    page.locator("#synth-text textarea").fill(text)
    page.get_by_text("Voice settings").click()
    box = page.locator("#synth-max-s input[type=number]")
    box.fill("2")  # keep the tiny model's takes short
    box.press("Enter")


def _history_rows(page) -> dict[str, str]:
    """The take rows of the history table by take number (the table may render a row twice for layout)."""
    rows = page.locator("#synth-history tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    return {t.split()[0]: t for t in texts if t.split() and t.split()[0].isdigit()}


def test_two_takes_blind_pick_and_reload(webui, page, voices, screenshot):
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    open_studio(page, webui.url)
    _go_to_synthesize(page)
    generate = page.locator("#synth-generate")
    assert generate.is_disabled()  # nothing to work with yet, and the reason is said
    assert "reference clip" in page.locator("#synth-readiness").inner_text()

    _fill_zero_shot(page, clip, TEXT)
    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=15_000)
    generate.click()
    page.wait_for_function(
        "document.querySelector('#synth-batch')?.innerText.includes('Best')", timeout=300_000, polling=1000
    )
    assert set(_history_rows(page)) == {"1", "2"}
    assert "CER" in page.locator("#synth-take-info").inner_text()  # the automatic check is shown
    screenshot(page, "synthesize")

    page.locator("#ab-start").click()
    page.wait_for_function("!document.querySelector('#ab-pick-a').disabled", timeout=30_000)
    page.locator("#ab-pick-a").click()
    page.wait_for_function("document.querySelector('#ab-result')?.innerText.includes('A was')", timeout=30_000)
    screenshot(page, "synthesize_ab")

    trials = json.loads((webui.workspace / "takes" / "ab_trials.json").read_text(encoding="utf-8"))
    assert [t["pick"] for t in trials] == ["A"]
    wavs = sorted((webui.workspace / "takes").glob("*.wav"))
    assert len(wavs) == 2

    page.reload()
    open_studio(page, webui.url)
    _go_to_synthesize(page)
    rows = _history_rows(page)
    assert set(rows) == {"1", "2"}  # nothing lost on reload
    assert sorted(row.split()[-1] for row in rows.values()) == ["0", "1"]  # the A/B win is still counted


def test_unsupported_reference_shows_a_message(webui, page, voices, screenshot):
    open_studio(page, webui.url)
    _go_to_synthesize(page)
    _fill_zero_shot(page, voices / "bad" / "not_audio.wav", TEXT)
    # said as soon as the clip is chosen (not after Generate), naming the user's file, never a traceback
    page.wait_for_function(
        "document.querySelector('#synth-readiness')?.innerText.includes('not_audio')", timeout=30_000
    )
    assert page.locator("#synth-generate").is_disabled()
    assert "Traceback" not in page.locator("#synth-readiness").inner_text()
    screenshot(page, "synthesize_error")
    # the page keeps working: removing the clip asks for one instead
    page.locator("#synth-ref-audio button[aria-label='Clear']").click()
    page.wait_for_function(
        "document.querySelector('#synth-readiness')?.innerText.includes('Add a reference clip')", timeout=15_000
    )
    assert page.locator("#synth-generate").is_disabled()


def test_reading_preview_spells_out_numbers_and_says_when_there_is_nothing(webui, page, screenshot):
    open_studio(page, webui.url)
    _go_to_synthesize(page)
    page.locator("#synth-text textarea").fill("It costs $20. See you at 5.")
    page.get_by_role("button", name="How it will be read").click()
    page.locator("#synth-reading-btn").click()
    page.wait_for_function(
        "document.querySelector('#synth-reading')?.innerText.includes('twenty dollars')", timeout=30_000
    )
    preview = page.locator("#synth-reading").inner_text()
    assert "1 sentence(s)" in preview and "D AA1 L ER0 Z" in preview  # "dollars" in ARPAbet: one piece by default

    split = page.locator("#synth-split input")  # cut at every punctuation mark instead: two pieces
    split.click()
    page.get_by_role("option", name="At every punctuation mark").click()
    page.locator("#synth-reading-btn").click()
    page.wait_for_function(
        "document.querySelector('#synth-reading')?.innerText.includes('2 sentence(s)')", timeout=30_000
    )
    screenshot(page, "synthesize_reading")

    page.locator("#synth-text textarea").fill("!!! ???")
    page.locator("#synth-reading-btn").click()
    toast = page.locator(".toast-body").first
    toast.wait_for(state="visible", timeout=30_000)
    assert "nothing" in toast.inner_text() and "Traceback" not in toast.inner_text()


def _pick(page, elem_id: str, option) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).click()


def test_directing_controls_are_kept_with_the_take(start_webui, page, voices, tiny_s1_ckpt, tiny_s2_pth, tmp_path):
    """A library voice with a clip tagged "excited": pick it as the style and the "fast" pauses; the take made
    keeps both in its saved settings."""
    import csv
    import re

    from studio.inference.pauses import PauseMap
    from studio.services.voices import VoiceInfo, VoiceLibrary

    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:2]
    (ref, ref_text), (excited, excited_text) = [(voices / "en_joe" / r["file"], r["text"]) for r in rows]
    workspace = tmp_path / "ws"
    tagged = {"file": "references/excited.wav", "text": excited_text, "language": "en", "emotion": "excited"}
    info = VoiceInfo("joe", workspace, ref_text, "en", ["en"], references=[tagged])
    VoiceLibrary(workspace).add(
        info, gpt=tiny_s1_ckpt, sovits=tiny_s2_pth, reference=ref, extra_files={tagged["file"]: excited}
    )
    server = start_webui(workspace=workspace)
    open_studio(page, server.url)
    _go_to_synthesize(page)
    _pick(page, "synth-voice", re.compile(r"^joe"))
    page.locator("#synth-text textarea").fill(TEXT)
    page.get_by_text("Voice settings").click()
    for box, value in (("#synth-max-s", "2"), ("#synth-n", "1")):
        page.locator(f"{box} input[type=number]").fill(value)
        page.locator(f"{box} input[type=number]").press("Enter")
    page.get_by_text("Check each take (transcribe and compare the voice)").click()  # no Whisper: faster

    page.get_by_text("Directing the voice").click()
    _pick(page, "synth-style", "excited")  # labelled by its tag
    _pick(page, "synth-pauses", "Fast (tight, for dialogue)")
    page.get_by_text("Edit the pauses (seconds)").click()
    comma = page.locator("#synth-pause-comma input[type=number]")
    page.wait_for_function("document.querySelector('#synth-pause-comma input').value === '0.05'", timeout=15_000)
    shown_comma = float(comma.input_value())  # the preset's seconds are shown for editing

    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=15_000)
    page.locator("#synth-generate").click()
    page.wait_for_function(
        "document.querySelector('#synth-batch')?.innerText.includes('ready')", timeout=300_000, polling=1000
    )
    (record,) = [p for p in (workspace / "takes").glob("*.json") if p.name != "ab_trials.json"]
    settings = json.loads(record.read_text(encoding="utf-8"))["settings"]
    assert settings["voice"] == "joe"
    assert Path(settings["style_reference"]).resolve() == (workspace / "voices/joe/references/excited.wav").resolve()
    assert settings["style_ref_text"] == excited_text and settings["style_ref_lang"] == "en"
    assert PauseMap.from_dict(settings["pauses"]) == PauseMap.preset("fast")
    assert settings["pauses"]["comma"] == shown_comma
    assert settings["timbre_mix"] == []  # no mix asked for: the reference's own timbre
