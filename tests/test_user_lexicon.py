"""The user's pronunciation list: parsed strictly, applied only where it matches, never leaking between calls."""

from __future__ import annotations

import threading

import pytest

from studio.errors import TextError
from studio.services.pronunciations import PronunciationService
from studio.text.frontend import text_to_phones
from studio.text.user_lexicon import active, parse_lexicon, using

LEXICON = parse_lexicon(
    """
# names and brands
en | SoVITS | S OW1 V IH0 T S
en | GPT    | JH IY1 P IY1 T IY1
zh | 曾小贤 | zeng1 xiao3 xian2
"""
)


def test_english_words_read_as_given_whatever_their_case():
    plain = text_to_phones("I love SoVITS, and sovits loves GPT-based tools.", "en")
    mine = text_to_phones("I love SoVITS, and sovits loves GPT-based tools.", "en", lexicon=LEXICON)
    assert "S OW1 V IH0 T S" not in " ".join(plain.phones)  # spelled out letter by letter otherwise
    assert " ".join(mine.phones).count("S OW1 V IH0 T S") == 2
    assert "JH IY1 P IY1 T IY1 B EY1 S T" in " ".join(mine.phones)  # a hyphenated part too
    assert "SoVITS" in mine.norm_text and "sovits" in mine.norm_text  # shown as written, no stand-ins
    assert mine.phones[-1] == "."


def test_chinese_words_override_polyphones_only_where_they_occur():
    text = "曾小贤曾经来过。"
    plain = text_to_phones(text, "zh").phones
    mine = text_to_phones(text, "zh", lexicon=LEXICON).phones
    assert plain[:2] == ["c", "eng2"] and mine[:2] == ["z", "eng1"]  # the surname
    assert mine[6:8] == plain[6:8] == ["c", "eng2"]  # 曾经 keeps its own reading
    seq = text_to_phones(text, "zh", lexicon=LEXICON)
    assert sum(seq.segments[0].word2ph) == len(seq.phones)  # word2ph still lines up for BERT


def test_without_a_lexicon_nothing_changes_and_nothing_leaks():
    text = "SoVITS 曾小贤"
    before = text_to_phones(text, "zh").phones
    with using(LEXICON):
        assert active() is LEXICON
        assert text_to_phones(text, "zh").phones != before
    assert active() is None and text_to_phones(text, "zh").phones == before
    # another thread never sees this thread's lexicon
    seen = []
    with using(LEXICON):
        worker = threading.Thread(target=lambda: seen.append(text_to_phones(text, "zh").phones))
        worker.start()
        worker.join()
    assert seen == [before]


@pytest.mark.parametrize(
    "line, message",
    [
        ("en | SoVITS", "three parts"),
        ("fr | bonjour | B OW0 N ZH UW1 R", "language 'fr' is not supported"),
        ("en | SoVITS | S OW1 V IX T S", "IX is not an ARPAbet phone"),
        ("en | two words | T UW1", "not one English word"),
        ("zh | 曾小贤 | zeng1 xiao3", "3 character(s) need 3 syllable(s), got 2"),
        ("zh | 曾 | zeng", "needs a tone digit"),
        ("zh | 曾 | zzz1", "not a Mandarin syllable"),
        ("zh | abc | a1 b1 c1", "Chinese characters only"),
    ],
)
def test_bad_lines_are_named_with_the_fix(line, message):
    with pytest.raises(TextError, match="line 2") as info:
        parse_lexicon("# header\n" + line, source="pronunciations.txt")
    assert message in str(info.value)


def test_service_saves_only_a_valid_list_and_rereads_changes(tmp_path):
    service = PronunciationService(tmp_path)
    assert len(service.lexicon()) == 0 and service.text().startswith("#")  # a commented template at first
    service.save("en | SoVITS | S OW1 V IH0 T S")
    assert set(service.lexicon().en) == {"sovits"}
    with pytest.raises(TextError):
        service.save("en | SoVITS | S OW1 V IX T S")
    assert "IH0" in service.path.read_text(encoding="utf-8")  # the good list is still there
    service.path.write_text("zh | 曾 | zeng1\n", encoding="utf-8")  # edited by hand
    assert set(service.lexicon().zh) == {"曾"} and not service.lexicon().en
