"""The script parser: the hand-written format's rules, the other formats, and errors that point at the spot."""

from __future__ import annotations

import pytest

from studio.services.scripts import ScriptError, load_script, parse_script
from studio.services.scripts.records import NARRATOR

DIALOGUE = """# The night shift
ALICE: Did you hear that?
BOB: [style whisper] Only the wind.
It always howls like this in March.
[pause 1.5]

[style excited]
alice: Then what is that light? [pause 0.5] Look!
BOB:
Nothing. \\[Really\\] nothing.
小明：你好。
"""


def test_dialogue_lines_speakers_styles_pauses_and_paragraphs():
    script = parse_script(DIALOGUE)
    got = [(ln.speaker, ln.text, ln.style, ln.pause_after, ln.paragraph_end) for ln in script.lines]
    assert got == [
        ("ALICE", "Did you hear that?", None, None, False),
        ("BOB", "Only the wind. It always howls like this in March.", "whisper", 1.5, True),
        ("ALICE", "Then what is that light?", "excited", 0.5, False),  # names match without regard to case
        ("ALICE", "Look!", "excited", None, False),
        ("BOB", "Nothing. [Really] nothing.", "whisper", None, False),  # Bob keeps his style
        ("小明", "你好。", None, None, True),
    ]
    assert [ln.source_line for ln in script.lines] == [2, 3, 8, 8, 10, 11]
    assert script.speakers == ["ALICE", "BOB", "小明"]


def test_style_reset_leading_pause_and_unnamed_lines():
    script = parse_script("[pause 2]\nOnce upon a time.\nA: [style calm] One.\n[style default]\nA: Two.")
    assert script.lead_in == 2.0
    assert [(ln.speaker, ln.style) for ln in script.lines] == [(NARRATOR, None), ("A", "calm"), ("A", None)]


def test_colons_that_are_not_speakers_stay_text():
    script = parse_script("NARRATOR: It was 3:00 at http://example.com\n\n\\Dear: friend, hello.")
    assert [(ln.speaker, ln.text) for ln in script.lines] == [
        ("NARRATOR", "It was 3:00 at http://example.com"),
        ("NARRATOR", "Dear: friend, hello."),  # a new paragraph of the same speaker; "\" keeps "Dear:" as text
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("ALICE: Hello [pause", 1, 14, "never closed"),
        ("ALICE: Hi.\nBOB: Well [shout] no.", 2, 11, "Unknown direction [shout]"),
        ("ALICE: Hi.\n\n  [pause soon]", 3, 3, "needs a number of seconds"),
        ("BOB: Wait. [pause 45]", 1, 12, "0–30 seconds"),
        ("ALICE: Fine.\nBOB:   ...", 2, 8, "nothing to say"),
        ("ALICE: ok\n   [pause -1]", 2, 4, "0–30 seconds"),
    ],
)
def test_errors_name_line_and_column(text, line, column, words):
    with pytest.raises(ScriptError) as info:
        parse_script(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value).startswith(f"line {line}, column {column}: ")
    assert words in str(info.value)


def test_empty_script_is_refused():
    with pytest.raises(ScriptError, match="no lines"):
        parse_script("# only a comment\n\n")


def test_plain_text_is_one_voice_by_paragraph(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("It was a dark night.\nThe wind howled.\n\n\nMorning came.\n", encoding="utf-8")
    script = load_script(path)
    assert (script.format, script.name) == ("txt", "story")
    assert [(ln.speaker, ln.text, ln.paragraph_end) for ln in script.lines] == [
        (NARRATOR, "It was a dark night. The wind howled.", True),
        (NARRATOR, "Morning came.", True),
    ]


def test_txt_with_named_lines_is_read_as_dialogue(tmp_path):
    path = tmp_path / "scene.txt"
    path.write_text("ANN: Hi.\nBEN: Hello.\n", encoding="utf-8")
    assert load_script(path).speakers == ["ANN", "BEN"]


def test_markdown_headings_are_chapters(tmp_path):
    path = tmp_path / "book.md"
    path.write_text(
        "# Chapter One\n\nIt was **very** dark, see [the map](http://x).\n\n- a list item\n\n"
        "```\ncode is skipped\n```\n| a | table |\n\n## Chapter Two\n\n> Quoted `words`.\n",
        encoding="utf-8",
    )
    script = load_script(path)
    assert script.chapters == ("Chapter One", "Chapter Two")
    assert [(ln.text, ln.chapter) for ln in script.lines] == [
        ("Chapter One", "Chapter One"),
        ("It was very dark, see the map.", "Chapter One"),
        ("a list item", "Chapter One"),
        ("Chapter Two", "Chapter Two"),
        ("Quoted words.", "Chapter Two"),
    ]


def test_srt_cues_become_timed_lines(tmp_path):
    path = tmp_path / "dub.srt"
    path.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nANN: Hello there.\n\n2\n00:00:03,000 --> 00:00:05,000\n<i>Who's there?</i>\n",
        encoding="utf-8",
    )
    script = load_script(path)
    assert script.timed
    assert [(ln.speaker, ln.text, ln.slot, ln.source_line) for ln in script.lines] == [
        ("ANN", "Hello there.", (1.0, 2.5), 3),
        (NARRATOR, "Who's there?", (3.0, 5.0), 7),
    ]


def test_malformed_srt_names_the_line(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,500\nHi.\n\n2\n00:00:03 -> soon\nBye.\n", encoding="utf-8")
    with pytest.raises(ScriptError) as info:
        load_script(path)
    assert info.value.line is not None and info.value.line >= 5


def test_vtt(tmp_path):
    path = tmp_path / "dub.vtt"
    path.write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nBEN: Yes.\n", encoding="utf-8")
    script = load_script(path)
    assert [(ln.speaker, ln.text, ln.slot) for ln in script.lines] == [("BEN", "Yes.", (0.5, 1.5))]


def test_epub_chapters(tmp_path):
    epub = pytest.importorskip("ebooklib.epub")
    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("T")
    book.set_language("en")
    chapters = []
    for n, body in enumerate(["<h1>Start</h1><p>First words.</p><p>Second words.</p>", "<h2>End</h2><p>Last.</p>"]):
        ch = epub.EpubHtml(title=f"c{n}", file_name=f"c{n}.xhtml", lang="en")
        ch.content = f"<html><body>{body}</body></html>"
        book.add_item(ch)
        chapters.append(ch)
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(tmp_path / "b.epub"), book)
    script = load_script(tmp_path / "b.epub")
    assert script.chapters == ("Start", "End")
    assert [ln.text for ln in script.lines] == ["Start", "First words.", "Second words.", "End", "Last."]


def test_epub_without_ebooklib_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ebooklib", None)
    (tmp_path / "b.epub").write_bytes(b"PK")
    with pytest.raises(ScriptError, match="ebooklib"):
        load_script(tmp_path / "b.epub")
