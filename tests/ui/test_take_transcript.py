"""The take's clickable transcript in a real browser: a click on a word seeks the player; subtitles to download."""

from __future__ import annotations

import pytest
import soundfile as sf

from studio.services.subtitles import WordTime
from studio.services.take_qa import TakeQA
from studio.services.takes import TakeSettings, TakeStore

from .conftest import open_studio

pytestmark = pytest.mark.slow

# starts just past whole seconds: the player shows its position rounded to the second
WORDS = [WordTime("One", 0.4, 0.9), WordTime("two", 1.1, 1.6), WordTime("three", 2.1, 2.6), WordTime("four.", 3.1, 3.6)]


def _checked_take(workspace, clip) -> str:
    """A take in the server's store, checked, with its word times (as the take check stores them)."""
    audio, sr = sf.read(clip, dtype="float32")
    store = TakeStore(workspace / "takes")
    settings = TakeSettings(text="One two three four.", lang="en")
    take = store.add(audio, sr, settings=settings, seed=4242, batch="words", reference=clip)
    store.set_qa(take.id, TakeQA(transcript="One two three four.", cer=0.0, wer=0.0), WORDS)
    return take.id


def _player_second(page) -> str:
    return page.locator("#synth-take-audio #time").inner_text().strip()


def test_clicking_a_word_seeks_the_player(webui, page, voices):
    clip = voices / "en_joe" / "clips" / "en_joe_000.wav"  # 4–6 s of speech: every word lies inside it
    _checked_take(webui.workspace, clip)
    open_studio(page, webui.url)
    page.get_by_role("tab", name="Synthesize").click()
    page.locator("#synth-take input").click()
    page.get_by_role("option").filter(has_text="seed 4242").first.click()
    page.wait_for_selector("#synth-take-words [data-word-start]", timeout=30_000)
    spans = page.locator("#synth-take-words .take-word")
    assert [spans.nth(i).inner_text() for i in range(spans.count())] == [w.word for w in WORDS]
    page.wait_for_selector("#synth-take-audio #time", timeout=30_000)

    for word, second in (("four.", "0:03"), ("two", "0:01"), ("three", "0:02")):  # any order, from any place
        page.locator("#synth-take-words .take-word", has_text=word).click()
        page.wait_for_function(
            "s => document.querySelector('#synth-take-audio #time')?.innerText.trim() === s", arg=second, timeout=10_000
        )
        assert _player_second(page) == second

    assert page.locator("#synth-take-srt").is_visible() and page.locator("#synth-take-vtt").is_visible()
    with page.expect_download() as download:
        page.locator("#synth-take-srt").click()
    text = open(download.value.path(), encoding="utf-8").read()
    assert "00:00:00,400 --> " in text and "One two three four." in text
