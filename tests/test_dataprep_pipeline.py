"""The whole prep run into a workspace (fake ASR), all-or-nothing on bad input, proofreading, the CLI verb."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from studio.audio.io import load_audio
from studio.commands import prep as prep_cmd
from studio.corpus import read_list
from studio.dataprep.pipeline import PrepOptions, run_prep
from studio.dataprep.proofread import Proofreader
from studio.dataprep.slicing import parse_slice_name
from studio.dataprep.transcribe import Transcript
from studio.errors import AudioError
from studio.workspace import Workspace


class FakeTranscriber:
    """Says how long each clip is, so tests can check texts landed on the right clip without a model."""

    def __init__(self):
        self.calls = 0

    def transcribe(self, audio, sample_rate, language=None):
        self.calls += 1
        return Transcript(f"clip of {len(audio) / sample_rate:.1f} seconds", language or "en", 0.99, -0.2, 0.01)


def tree(path):
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def prepared(voices, tmp_path):
    ws = Workspace("joe", tmp_path)
    stages = []
    report = run_prep(
        [voices / "raw_take" / "raw_take_48k_stereo.wav"],
        ws,
        PrepOptions(language="en"),
        transcriber=FakeTranscriber(),
        on_progress=lambda stage, fraction, message: stages.append((stage, fraction)),
    )
    return ws, report, stages


def test_prep_writes_list_slices_and_reports(prepared, voices):
    ws, report, stages = prepared
    entries = read_list(ws.dataset_list)
    assert len(entries) == report.entries == report.new_slices >= 4
    for entry in entries:
        audio, sr = load_audio(entry.audio_path)
        assert sr == 32000 and entry.language == "en" and entry.speaker == "joe"
        assert entry.text == f"clip of {len(audio) / sr:.1f} seconds"
        stem, start, end = parse_slice_name(entry.name)
        assert end - start == len(audio)
    assert (ws.raw_dir / "raw_take_48k_stereo.wav").read_bytes() == (
        voices / "raw_take" / "raw_take_48k_stereo.wav"
    ).read_bytes()
    assert (ws.clean_dir / "raw_take_48k_stereo.wav").is_file()
    saved = json.loads(ws.prep_report.read_text(encoding="utf-8"))
    assert saved["entries"] == len(entries) and saved["reference"]["audio_path"].startswith(str(ws.slices_dir))
    assert set(json.loads(ws.asr_report.read_text())) == {e.name for e in entries}
    assert list(dict.fromkeys(s for s, _ in stages)) == ["import", "clean", "slice", "transcribe", "lint", "save"]
    assert all(0.0 <= f <= 1.0 for _, f in stages)
    assert not [p for p in ws.dir.iterdir() if p.name.startswith(".staging")]
    assert "LUFS" in report.summary()


def test_reimport_replaces_only_its_own_clips(prepared, voices):
    ws, first, _ = prepared
    run_prep(
        [voices / "en_joe" / "clips" / "en_joe_000.wav"],
        ws,
        PrepOptions(language="en", slice=False),
        transcriber=FakeTranscriber(),
    )
    assert len(read_list(ws.dataset_list)) == first.entries + 1
    before = tree(ws.slices_dir)
    run_prep(
        [voices / "raw_take" / "raw_take_48k_stereo.wav"], ws, PrepOptions(language="en"), transcriber=FakeTranscriber()
    )
    assert len(read_list(ws.dataset_list)) == first.entries + 1
    assert tree(ws.slices_dir) == before


@pytest.mark.parametrize("bad", ["empty.wav", "not_audio.wav", "zero_frames.wav", "silent_2s.wav"])
def test_bad_input_leaves_workspace_unchanged(prepared, voices, bad):
    ws, _, _ = prepared
    before = tree(ws.dir)
    fake = FakeTranscriber()
    with pytest.raises(AudioError, match=bad.replace(".", r"\.") + "|silent"):
        run_prep([voices / "raw_take" / "raw_take.wav", voices / "bad" / bad], ws, PrepOptions(), transcriber=fake)
    assert tree(ws.dir) == before
    assert fake.calls == 0


def test_failed_first_run_leaves_no_project(tmp_path, voices):
    ws = Workspace("new", tmp_path)
    with pytest.raises(AudioError):
        run_prep([voices / "bad" / "empty.wav"], ws, PrepOptions(), transcriber=FakeTranscriber())
    assert not ws.dir.exists()


def test_proofreading_survives_reload_and_undo(prepared):
    ws, _, _ = prepared
    original = read_list(ws.dataset_list)
    pr = Proofreader(ws)
    pr.edit_text(0, "  Hello,   edited   text. ")
    left, right = pr.split(1, 2.0)
    merged = pr.merge_next(2)  # the right half of the split with the next clip
    pr.delete(len(pr.entries) - 1)
    again = read_list(ws.dataset_list)
    assert again[0].text == "Hello, edited text."
    assert len(again) == len(original) + 1 - 1 - 1
    assert load_audio(left.audio_path)[0].shape[0] == 64000
    a, b = parse_slice_name(left.name), parse_slice_name(right.name)
    assert a[2] == b[1] and (a[1], b[2]) == parse_slice_name(original[1].name)[1:]
    m = parse_slice_name(merged.name)
    assert len(load_audio(merged.audio_path)[0]) == m[2] - m[1]
    assert not original[-1].audio_path.exists() and not original[1].audio_path.exists()
    assert {p.name for p in ws.slices_dir.glob("*.wav")} == {e.name for e in again}
    fresh = Proofreader(ws)  # a restart: undo still works from the journal
    assert [fresh.undo() for _ in range(4)] == ["delete", "merge", "split", "edit"]
    assert fresh.undo() is None
    assert read_list(ws.dataset_list) == original
    assert {p.name for p in ws.slices_dir.glob("*.wav")} == {e.name for e in original}


def test_cli_prep_json(tmp_path, voices, capsys, monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    prep_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "prep",
            str(voices / "en_joe" / "clips" / "en_joe_001.wav"),
            "--name",
            "cli",
            "--workspace",
            str(tmp_path),
            "--no-slice",
            "--no-asr",
            "--json",
            "--denoise",
            "0.5",
        ]
    )
    assert args.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["entries"] == 1 and "no_text" in {f["code"] for f in out["lint"]["findings"]}
    assert out["sources"][0]["clean"]["denoise"] == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["prep", "x.wav", "--name", "n", "--denoise", "2"])
    assert np.isfinite(out["sources"][0]["clean"]["snr_after_db"])
