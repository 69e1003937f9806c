"""Synthesize tab, in a real browser: a 30 s reference is named before Generate and can be trimmed in the page;
a failed batch leaves the previous best take playing; the take history shows the whole text; deleting a take
asks first."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import expect

from .conftest import open_studio

pytestmark = pytest.mark.slow
LONG_TEXT = "Hello there, this sentence is long enough to need more than two words in the history table."


@pytest.fixture(scope="module")
def long_reference(voices, tmp_path_factory):
    """About 30 s of real speech: the test voice's clips one after another."""
    pieces, rate = [], None
    for clip in sorted((voices / "en_joe" / "clips").glob("*.wav")):
        audio, rate = sf.read(clip, dtype="float32", always_2d=False)
        pieces.append(audio if audio.ndim == 1 else audio.mean(axis=1))
        if sum(len(p) for p in pieces) >= 30 * rate:
            break
    audio = np.concatenate(pieces)
    assert len(audio) >= 30 * rate, "the test voice has too little audio for a 30 s clip"
    path = tmp_path_factory.mktemp("long-ref") / "my_long_take.wav"
    sf.write(path, audio[: 30 * rate], rate)
    return path


def test_long_reference_is_named_before_generate_and_trimmed(webui, page, long_reference, screenshot):
    open_studio(page, webui.url)
    page.get_by_role("tab", name="Synthesize").click()
    page.locator("#synth-text textarea").fill(LONG_TEXT)
    page.locator("#synth-ref-audio input[type=file]").set_input_files(str(long_reference))
    page.wait_for_function(
        "document.querySelector('#synth-readiness')?.innerText.includes('30.0 s long')", timeout=30_000
    )
    assert page.locator("#synth-generate").is_disabled()  # said before Generate, not after
    page.locator("#synth-trim").wait_for(state="visible")
    screenshot(page, "synthesize_long_reference")
    end = float(page.locator("#synth-trim-end input[type=number]").input_value())
    assert 9.0 <= end <= 10.0  # the engine's auto-trim point: the quietest moment of the tenth second

    page.locator("#synth-trim-auto").click()
    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=30_000)
    cut = list((webui.workspace / "takes" / "trimmed").glob("my_long_take-trim-*.wav"))
    assert len(cut) == 1 and 9.0 <= sf.info(cut[0]).duration <= 10.0
    page.locator("#synth-trim").wait_for(state="hidden", timeout=30_000)
    assert "Ready" in page.locator("#synth-readiness").inner_text()

    # a span picked with the sliders: 12 s is refused with the reason, 4 s is used
    page.locator("#synth-ref-audio button[aria-label='Clear']").click()
    page.locator("#synth-ref-audio input[type=file]").set_input_files(str(long_reference))
    # the upload's own updates (the panel, the sliders' auto point, the readiness line) all land before the
    # sliders are moved: on a busy machine a late one would put the auto span back
    page.wait_for_function(
        "document.querySelector('#synth-readiness')?.innerText.includes('30.0 s long')", timeout=30_000
    )
    page.locator("#synth-trim").wait_for(state="visible", timeout=30_000)
    for slider, value in (("start", "2"), ("end", "14")):
        box = page.locator(f"#synth-trim-{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
        expect(box).to_have_value(value)
    page.locator("#synth-trim-span").click()
    page.locator(".toast-body", has_text="12.0 s long").first.wait_for(timeout=30_000)
    box = page.locator("#synth-trim-end input[type=number]")
    box.fill("6")
    box.press("Enter")
    page.locator("#synth-trim-span").click()
    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=30_000)
    assert (webui.workspace / "takes" / "trimmed" / "my_long_take-trim-2.0-6.0s.wav").is_file()


def test_error_keeps_best_take_history_shows_text_and_delete_asks(webui, page, voices, screenshot):
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    open_studio(page, webui.url)
    page.get_by_role("tab", name="Synthesize").click()
    page.locator("#synth-ref-audio input[type=file]").set_input_files(str(clip))
    page.locator("#synth-ref-text textarea").fill("A short sentence.")
    page.locator("#synth-text textarea").fill(LONG_TEXT)
    page.get_by_text("Voice settings").click()
    for elem, value in (("#synth-max-s", "2"), ("#synth-n", "1")):
        box = page.locator(f"{elem} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.wait_for_function("!document.querySelector('#synth-generate').disabled", timeout=30_000)
    page.locator("#synth-generate").click()
    page.wait_for_function(
        "document.querySelector('#synth-batch')?.innerText.includes('ready')", timeout=300_000, polling=1000
    )
    page.locator("#synth-best audio[src]").first.wait_for(state="attached", timeout=30_000)
    history = page.locator("#synth-history").inner_text()
    assert "more than two words in the history" in " ".join(history.split())  # the whole text, wrapped

    page.locator("#synth-text textarea").fill("… … …")  # nothing speakable: this batch fails
    page.locator("#synth-generate").click()
    page.locator(".toast-body").first.wait_for(state="visible", timeout=120_000)
    screenshot(page, "synthesize_error_keeps_best")
    page.wait_for_timeout(500)
    assert page.locator("#synth-best audio[src]").count() >= 1  # the best take is still there to play
    assert page.locator("#synth-best").get_by_text("Error").count() == 0  # and no error covers it

    takes = sorted((webui.workspace / "takes").glob("*.wav"))
    page.locator("#synth-delete-confirm").wait_for(state="hidden")
    page.get_by_role("button", name="Delete take").click()
    page.locator("#synth-delete-confirm").wait_for(state="visible")
    assert sorted((webui.workspace / "takes").glob("*.wav")) == takes  # nothing removed before the answer
    page.locator("#synth-delete-no").click()
    page.locator("#synth-delete-confirm").wait_for(state="hidden")
    assert sorted((webui.workspace / "takes").glob("*.wav")) == takes
    page.get_by_role("button", name="Delete take").click()
    page.locator("#synth-delete-yes").click()
    page.locator("#synth-delete-confirm").wait_for(state="hidden", timeout=30_000)
    assert len(list((webui.workspace / "takes").glob("*.wav"))) == len(takes) - 1
