"""RecordingService: takes of a voice project, their level verdicts, previews and the consent record."""

from __future__ import annotations

import numpy as np
import pytest

from studio.errors import AudioError, StudioError, WorkspaceError
from studio.services.reading_script import READING_SCRIPTS, reading_script
from studio.services.recording import RecordingService, measure_levels

SR = 16000


def _tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    envelope = (np.sin(2 * np.pi * 1.5 * t) > 0).astype(np.float32)  # speech-like bursts and pauses
    return (amplitude * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_levels_flag_clipping_quiet_and_short_takes():
    assert measure_levels(_tone(3.0, 0.5), SR).issues == ()
    loud = np.clip(_tone(3.0, 3.0), -1.0, 1.0)  # hard-clipped: long flat runs at full scale
    assert "clipping" in measure_levels(loud, SR).issues
    assert "too_quiet" in measure_levels(_tone(3.0, 0.01), SR).issues
    assert "too_short" in measure_levels(_tone(0.5, 0.5), SR).issues
    assert "silent" in measure_levels(np.zeros(SR * 2, np.float32), SR).issues


def test_takes_are_kept_in_the_project_and_survive_a_new_service(tmp_path, voices):
    service = RecordingService(tmp_path)
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    first = service.add_take("demo", clip, source="mic")
    second = service.add_take("demo", clip, source="mic")
    upload = service.add_take("demo", clip)
    assert (first.name, second.name, upload.name) == ("take-001.wav", "take-002.wav", clip.name)
    assert first.path.read_bytes() == clip.read_bytes()  # stored byte for byte
    again = RecordingService(tmp_path).list_takes("demo")
    assert [t.name for t in again] == ["take-001.wav", "take-002.wav", clip.name]
    assert again[0].levels.duration_s == pytest.approx(first.levels.duration_s)
    service.delete_take("demo", "take-002.wav")
    assert [t.name for t in service.list_takes("demo")] == ["take-001.wav", clip.name]
    assert not (tmp_path / "demo" / "recordings" / "take-002.wav").exists()


def test_unusable_files_are_refused_with_a_message(tmp_path, voices):
    service = RecordingService(tmp_path)
    with pytest.raises(AudioError, match="not_audio.wav"):
        service.add_take("demo", voices / "bad" / "not_audio.wav")
    with pytest.raises(AudioError, match="silent"):
        service.add_take("demo", voices / "bad" / "silent_2s.wav")
    with pytest.raises(WorkspaceError):
        service.add_take("", voices / "en_joe" / "clips" / "en_joe_000.wav")
    assert service.list_takes("demo") == []


def test_previews_match_what_preparation_does(tmp_path, voices):
    service = RecordingService(tmp_path)
    take = service.add_take("demo", voices / "raw_take" / "raw_take.wav")
    cuts = service.preview_slices("demo", take.name)
    assert len(cuts.slices) >= 5  # ten sentences with pauses
    assert all(a.end <= b.start for a, b in zip(cuts.slices, cuts.slices[1:]))
    assert cuts.envelope.shape == cuts.envelope_t.shape
    preview = service.preview_clean("demo", take.name, 0.5, seconds=5.0)
    assert preview.before.is_file() and preview.after.is_file()
    assert preview.report.denoise == 0.5


def test_consent_needs_a_tick_and_a_name(tmp_path):
    service = RecordingService(tmp_path)
    with pytest.raises(StudioError):
        service.save_consent("demo", "Ann", "I agree.", confirmed=False)
    with pytest.raises(StudioError):
        service.save_consent("demo", " ", "I agree.", confirmed=True)
    assert service.load_consent("demo") is None
    service.save_consent("demo", "Ann", "I agree.", confirmed=True)
    record = RecordingService(tmp_path).load_consent("demo")
    assert (record.speaker_name, record.statement, record.confirmed) == ("Ann", "I agree.", True)


def test_reading_scripts_cover_the_ui_languages():
    assert set(READING_SCRIPTS) == {"en", "zh", "ja"}
    assert all(len(lines) >= 5 for lines in READING_SCRIPTS.values())
    assert reading_script("ko") == READING_SCRIPTS["en"]


def test_unprepared_takes_are_the_ones_not_in_the_dataset_yet(tmp_path, voices):
    from studio.dataprep.pipeline import PrepOptions
    from studio.services.dataset_prep import DatasetPrepService

    service = RecordingService(tmp_path)
    clips = sorted((voices / "en_joe" / "clips").glob("*.wav"))[:2]
    first = service.add_take("demo", clips[0])
    assert [t.name for t in service.unprepared_takes("demo")] == [first.name]
    DatasetPrepService(tmp_path).prepare([first.path], "demo", PrepOptions(transcribe=False))
    second = service.add_take("demo", clips[1])
    assert [t.name for t in service.unprepared_takes("demo")] == [second.name]
