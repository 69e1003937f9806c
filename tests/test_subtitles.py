"""Subtitles and word timing: SRT/WebVTT files other readers accept, cue building, Whisper words → intended text."""

from __future__ import annotations

import csv

import pytest

from studio.errors import SubtitleError
from studio.services.subtitles import Cue, WordTime, cues_from_words, parse_srt, parse_vtt, shift, to_srt, to_vtt
from studio.services.word_timing import display_units, word_times_for_take

W = WordTime
CUES = [
    Cue(0.0, 1.25, "Hello, world."),
    Cue(1.5, 3.0104, "Two lines\nof text & <things>"),
    Cue(3661.007, 3662.5, "今日は、いい天気ですね。"),
]


def test_srt_reads_back_here_and_in_an_independent_reader():
    import srt

    text = to_srt(CUES)
    mine = parse_srt(text)
    theirs = list(srt.parse(text))
    assert [c.text for c in mine] == [c.text for c in CUES] == [s.content for s in theirs]
    assert [round(c.start, 3) for c in mine] == [s.start.total_seconds() for s in theirs] == [0.0, 1.5, 3661.007]
    assert [round(c.end, 3) for c in mine] == [round(s.end.total_seconds(), 3) for s in theirs]
    assert theirs[1].end.total_seconds() == pytest.approx(3.010)  # whole milliseconds in the file


def test_vtt_reads_back_here_and_in_an_independent_reader(tmp_path):
    import webvtt

    text = to_vtt(CUES)
    assert text.startswith("WEBVTT\n\n") and "&amp;" in text and "&lt;things&gt;" in text
    mine = parse_vtt(text)
    (tmp_path / "a.vtt").write_text(text, encoding="utf-8")
    theirs = webvtt.read(str(tmp_path / "a.vtt"))
    assert [c.text for c in mine] == [c.text for c in CUES]
    assert [c.start for c in theirs] == ["00:00:00.000", "00:00:01.500", "01:01:01.007"]
    assert [round(c.end, 3) for c in mine] == [0 + 1.25, 3.01, 3662.5]


def test_srt_errors_name_the_line():
    good = to_srt(CUES[:2]).splitlines()
    with pytest.raises(SubtitleError, match="line 6"):
        parse_srt("\n".join(good[:5] + ["00:00:02 -> 00:00:03", "text"]))
    with pytest.raises(SubtitleError, match="line 1: expected a cue number"):
        parse_srt("Hello\n00:00:00,000 --> 00:00:01,000\nx\n")
    with pytest.raises(SubtitleError, match="line 2: the cue ends before it starts"):
        parse_srt("1\n00:00:05,000 --> 00:00:01,000\nx\n")
    with pytest.raises(SubtitleError, match="line 3: cue 1 has no text"):
        parse_srt("1\n00:00:00,000 --> 00:00:01,000\n\n")


def test_vtt_errors_name_the_line_and_extras_are_skipped():
    with pytest.raises(SubtitleError, match="line 1"):
        parse_vtt(to_srt(CUES))
    with pytest.raises(SubtitleError, match="line 4"):
        parse_vtt("WEBVTT\n\nid-1\n00:01.000 -> 00:02.000\nhi\n")
    text = "\ufeffWEBVTT - a title\r\n\r\nNOTE made by hand\r\n\r\nintro\r\n00:01.500 --> 00:02.000 align:start\r\n<v Ann>Hi</v>\r\n"
    assert parse_vtt(text) == [Cue(1.5, 2.0, "Hi")]


def test_writers_refuse_impossible_times():
    with pytest.raises(SubtitleError, match="Subtitle 1"):
        to_srt([Cue(2.0, 1.0, "x")])


def test_shift_moves_and_drops_cues_before_zero():
    (moved,) = shift(CUES[:2], -1.4)  # the first cue (0–1.25 s) ends before 0 and is dropped
    assert moved.text == CUES[1].text and (moved.start, moved.end) == pytest.approx((0.1, 1.6104))
    (clipped,) = shift(CUES[:1], -1.0)  # partly before 0: starts at 0
    assert clipped.start == 0.0 and clipped.end == pytest.approx(0.25)
    assert shift(CUES[:1], 0.5)[0] == Cue(0.5, 1.75, "Hello, world.")


def _timed(text: str, step: float = 0.3) -> list[WordTime]:
    return [W(w, i * step, i * step + step * 0.9) for i, w in enumerate(text.split())]


def test_cues_break_at_sentence_ends_and_keep_within_limits():
    words = _timed(
        "Once upon a time there was a tiny studio. It made voices, long ones and short ones, for people who "
        "wanted to hear their own stories read aloud by a voice they chose themselves."
    )
    cues = cues_from_words(words, max_chars=42, max_duration=3.0)
    assert cues[0].text == "Once upon a time there was a tiny studio."
    assert all(len(c.text) <= 42 and c.end - c.start <= 3.0 + 1e-9 for c in cues)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:], strict=False))
    assert " ".join(c.text for c in cues).split() == [w.word for w in words]  # nothing lost or reordered
    assert any(c.text.endswith(",") for c in cues)  # a forced break goes after a comma when there is one


def test_cjk_cues_join_characters_without_spaces_and_count_characters():
    text = "今日はいい天気ですね。散歩に行きましょうか、それとも家で映画を見ましょうか。"
    units = display_units(text)
    assert units[:3] == ["今", "日", "は"] and units[-1] == "か。"
    cues = cues_from_words([W(u, i * 0.15, i * 0.15 + 0.14) for i, u in enumerate(units)], max_chars=16)
    assert cues[0].text == "今日はいい天気ですね。"
    assert "".join(c.text for c in cues) == text and all(len(c.text) <= 16 for c in cues)


def test_a_long_silence_ends_a_cue():
    cues = cues_from_words([W("Wait", 0.0, 0.4), W("for", 0.5, 0.7), W("it", 3.5, 3.8)])
    assert [c.text for c in cues] == ["Wait for", "it"]


# ---------------------------------------------------------------------------------------- alignment


def test_whisper_spelling_gives_way_to_the_intended_text():
    heard = [W(" Meet", 0.4, 0.7), W(" me", 0.7, 0.8), W(" at", 0.8, 0.9), W(" 10", 0.9, 1.3), W(" o'clock.", 1.3, 1.8)]
    words = word_times_for_take("Meet me at ten o'clock.", "en", heard, duration=2.0)
    assert [w.word for w in words] == ["Meet", "me", "at", "ten", "o'clock."]
    assert (words[3].start, words[3].end) == (0.9, 1.3)  # the substituted word keeps the heard word's time


def test_missed_words_are_interpolated_and_inserted_words_dropped():
    heard = [W("The", 0.5, 0.7), W("quick", 0.7, 1.0), W("fox", 1.6, 1.9), W("uh", 1.9, 2.1), W("jumps.", 2.1, 2.5)]
    words = word_times_for_take("The quick brown fox jumps.", "en", heard, duration=3.0)
    assert [w.word for w in words] == ["The", "quick", "brown", "fox", "jumps."]
    assert words[2].start >= 1.0 and words[2].end <= 1.6 and words[2].end > words[2].start  # in the gap
    assert (words[3].start, words[4].start) == (1.6, 2.1)  # "uh" shifted nothing


def test_a_missed_first_and_last_word_stay_near_the_speech():
    heard = [W("middle", 2.0, 2.4)]
    words = word_times_for_take("start middle end", "en", heard, duration=10.0)
    assert 1.0 < words[0].start < 2.0 and words[2].end < 3.5


def test_chinese_is_timed_per_character_even_when_whisper_groups_them():
    heard = [W("今天", 0.2, 0.6), W("天氣", 0.6, 1.0), W("很好", 1.1, 1.5)]  # traditional 氣 for 气
    words = word_times_for_take("今天天气很好。", "zh", heard, duration=2.0)
    assert [w.word for w in words] == ["今", "天", "天", "气", "很", "好。"]
    assert [w.start for w in words] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.1, 1.3])


def test_mixed_japanese_and_english_and_nothing_heard():
    words = word_times_for_take("これはAppleです。", "ja", [], duration=2.0)
    assert [w.word for w in words] == ["こ", "れ", "は", "Apple", "で", "す。"]
    assert words[0].start == 0.0 and words[-1].end == 2.0
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


def test_times_stay_inside_the_audio_and_in_order():
    heard = [W("b", 1.0, 1.2), W("a", 0.5, 0.6), W("c", 2.9, 3.4)]  # out of order, past the end
    words = word_times_for_take("a b c d", "en", heard, duration=3.0)
    assert all(0 <= w.start <= w.end <= 3.0 for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


# ------------------------------------------------------------------------------ real speech, real Whisper


@pytest.mark.slow
def test_real_speech_is_timed_where_it_is_spoken(voices, tmp_path):
    """Two sentences of the raw take through the take check's Whisper pass: stored words, SRT/VTT next to it."""
    import srt

    from studio.audio.io import load_audio
    from studio.dataprep.transcribe import WhisperTranscriber
    from studio.services.take_qa import TakeChecker
    from studio.services.takes import TakeService, TakeSettings, TakeStore

    with open(voices / "raw_take" / "segments.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:2]
    audio, rate = load_audio(voices / "raw_take" / "raw_take.wav")
    audio = audio[: int(13.0 * rate)]  # sentences 0 and 1 and the pause between them
    text = " ".join(r["text"] for r in rows)
    store = TakeStore(tmp_path / "takes")
    take = store.add(
        audio, rate, settings=TakeSettings(text=text, lang="en"), seed=0, batch="b", reference=voices / "x.wav"
    )
    service = TakeService(store, lambda: None, None, TakeChecker(lambda: WhisperTranscriber()))
    checked = service.check(take.id)

    again = store.get(take.id)  # the word times are part of the stored record
    assert again.words == checked.words and len(again.words) == len(text.split())
    assert [w.word for w in again.words] == text.split()
    n0 = len(rows[0]["text"].split())
    for words, row in ((again.words[:n0], rows[0]), (again.words[n0:], rows[1])):
        lo, hi = float(row["start_s"]), float(row["end_s"])
        # coarse: Whisper's word times are good to a few hundred ms (its first word tends to start early)
        assert all(lo - 0.5 <= w.start and w.end <= hi + 0.5 for w in words), (row["text"], words)
    assert all(a.end <= b.start for a, b in zip(again.words, again.words[1:], strict=False))

    cues = list(srt.parse(again.subtitle_path("srt").read_text(encoding="utf-8")))
    assert parse_vtt(again.subtitle_path("vtt").read_text(encoding="utf-8"))
    for row in rows:  # every sentence is covered by subtitles for nearly all its length
        lo, hi = float(row["start_s"]), float(row["end_s"])
        covered = sum(max(0.0, min(hi, c.end.total_seconds()) - max(lo, c.start.total_seconds())) for c in cues)
        assert covered >= 0.85 * (hi - lo)
    assert cues[-1].end.total_seconds() <= 13.0
    store.delete(take.id)
    assert not again.subtitle_path("srt").exists() and not again.subtitle_path("vtt").exists()


@pytest.mark.slow
def test_synth_writes_subtitles_by_extension(tiny_pretrained, voices, tmp_path, monkeypatch, capsys):
    """``studio synth --subtitles``: tiny models say nothing intelligible, so the words are spread over the take."""
    import soundfile as sf

    from studio.cli import main

    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path / "ws"))
    clip = voices / "en_joe" / "clips" / "en_joe_000.wav"
    base = ["synth", "--pretrained", str(tiny_pretrained), "--ref", str(clip), "--ref-text", "Hello.", "--lang", "en",
            "--text", "Good morning, see you soon.", "--seed", "1", "--max-tokens", "30", "--device", "cpu"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a.wav"), "--subtitles", str(tmp_path / "a.txt")]) == 1
    assert "Unknown subtitle format" in capsys.readouterr().err and not (tmp_path / "a.wav").exists()

    assert main([*base, "--out", str(tmp_path / "a.wav"), "--subtitles", str(tmp_path / "a.vtt")]) == 0
    duration = sf.info(tmp_path / "a.wav").duration
    cues = parse_vtt((tmp_path / "a.vtt").read_text(encoding="utf-8"))
    assert " ".join(c.text for c in cues) == "Good morning, see you soon."
    assert cues and all(0 <= c.start <= c.end <= duration + 0.001 for c in cues)
