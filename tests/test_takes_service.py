"""Take generation (the Synthesize tab's service): every setting the user picks reaches the audio and is kept."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import soundfile as sf

from studio.services.studio import Studio
from studio.services.takes import ZERO_SHOT, TakeSettings
from studio.settings import StudioSettings


@pytest.fixture
def studio(tmp_path, tiny_pretrained: Path) -> Studio:
    return Studio(StudioSettings(workspace=tmp_path / "workspace", pretrained=tiny_pretrained, device="cpu"))


@pytest.fixture
def settings(voices: Path) -> TakeSettings:
    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    return TakeSettings(
        text="Good morning. See you soon.",
        lang="en",
        voice=ZERO_SHOT,
        reference=str(voices / "en_joe" / row["file"]),
        ref_text=row["text"],
        ref_lang="en",
        seed=3,
        max_sentence_s=1.6,  # 40 tokens: the tiny model's takes stay short
        split="cut5",
    )


def _frames(take) -> int:
    return sf.info(take.wav).frames


def test_split_and_pause_reach_the_audio_and_are_kept(studio, settings):
    service = studio.takes
    (short,) = service.generate(dataclasses.replace(settings, pause_s=0.0), 1, check=False)
    (long,) = service.generate(dataclasses.replace(settings, pause_s=1.0), 1, check=False)
    (whole,) = service.generate(dataclasses.replace(settings, split="cut0", pause_s=1.0), 1, check=False)
    # same seed, two sentences: exactly one pause of 1 s between them
    assert _frames(long) - _frames(short) == 32000
    # not cut: one sentence, no pause, a different utterance
    assert _frames(whole) != _frames(long)

    reloaded = {t.id: t for t in service.store.list()}
    assert reloaded[long.id].settings.pause_s == 1.0 and reloaded[long.id].settings.split == "cut5"
    assert reloaded[whole.id].settings.split == "cut0"
    assert reloaded[long.id].settings.length_retries == TakeSettings.length_retries


def test_an_unknown_split_method_is_a_clear_error(studio, settings):
    from studio.errors import TextError

    with pytest.raises(TextError, match="Unknown text split method"):
        list(studio.takes.generate(dataclasses.replace(settings, split="cut9"), 1, check=False))


def test_saved_pronunciations_change_the_next_take(studio, settings):
    words = dataclasses.replace(settings, text="SoVITS works.", split="cut0")
    (before,) = studio.takes.generate(words, 1, check=False)
    studio.pronunciations.save("en | SoVITS | S OW1 V IH0 T S\n")
    (after,) = studio.takes.generate(words, 1, check=False)
    assert Path(before.wav).read_bytes() != Path(after.wav).read_bytes()  # same seed, other phones
