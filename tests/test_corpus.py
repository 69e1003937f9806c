"""The upstream ``.list`` format: aliases from symbols_v2.json, relative paths, round trips."""

from __future__ import annotations

import json

import pytest
from conftest import spec_dir

from studio.corpus import LANGUAGE_ALIASES, DatasetEntry, normalize_language, read_list, write_list
from studio.errors import DatasetError

SPEC = spec_dir() / "symbols_v2.json"


def test_language_aliases_match_upstream():
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    assert LANGUAGE_ALIASES == spec["language_ids"]["prepare_datasets_list_language_aliases"]


@pytest.mark.parametrize("folder", ["en_joe", "ja_nezumi", "zh_espeak"])
def test_reads_the_voice_lists(voices, folder):
    list_path = voices / folder / "dataset.list"
    entries = read_list(list_path)
    lines = [ln for ln in list_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(entries) == len(lines)
    for entry, line in zip(entries, lines, strict=True):
        assert entry.audio_path.is_file()
        assert entry.audio_path == (list_path.parent / line.split("|")[0]).resolve()
        assert entry.language == normalize_language(line.split("|")[2])
        assert entry.text == line.split("|", 3)[3].strip()


def test_round_trip_writes_relative_paths(tmp_path, voices):
    entries = read_list(voices / "ja_nezumi" / "dataset.list")
    inside = tmp_path / "slices" / "a.wav"
    mine = [DatasetEntry(inside, "spk", "ja", "テスト|です"), *entries]
    out = write_list(tmp_path / "dataset.list", mine)
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first == "slices/a.wav|spk|JA|テスト です"
    again = read_list(out)
    assert again[0].audio_path == inside
    assert [(e.audio_path, e.text, e.language) for e in again[1:]] == [
        (e.audio_path, e.text, e.language) for e in entries
    ]


def test_accepts_upstream_aliases_and_text_with_bars(tmp_path):
    path = tmp_path / "x.list"
    path.write_text("\ufeffa.wav|s|JP|こんにちは\nb.wav|s|En|a|b\n\n", encoding="utf-8")
    entries = read_list(path)
    assert [e.language for e in entries] == ["ja", "en"]
    assert entries[1].text == "a|b"


@pytest.mark.parametrize("line", ["only|three|fields", "a.wav|s|DE|hallo", "|s|EN|x"])
def test_bad_lines_raise_or_are_skipped(tmp_path, line):
    path = tmp_path / "x.list"
    path.write_text(f"ok.wav|s|EN|fine\n{line}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="Line 2"):
        read_list(path)
    assert len(read_list(path, strict=False)) == 1


def test_missing_and_non_utf8_lists(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_list(tmp_path / "nope.list")
    bad = tmp_path / "gbk.list"
    bad.write_bytes("a.wav|s|ZH|你好".encode("gbk"))
    with pytest.raises(DatasetError, match="UTF-8"):
        read_list(bad)
