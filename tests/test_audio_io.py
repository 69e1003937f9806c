"""Decoding every format a user may bring, librosa parity, WAV writing, and clear errors for bad files."""

from __future__ import annotations

import csv
import struct

import numpy as np
import pytest
import soundfile as sf
from golden_utils import assert_close, load_json, load_npz

from studio.audio.io import load_audio, probe_audio, read_wav_metadata, resample, save_wav
from studio.errors import AudioError


def test_load_matches_librosa_golden(golden):
    """HuBERT's input: librosa.load(ref, sr=16000) as upstream computed it (MANIFEST §4.1 step 1)."""
    meta = load_json(golden / "golden_hf_meta.json")
    ref = meta["ref_wav_file"]
    gold = load_npz(str(golden / "golden_hf.npz"))["hubert_in_wav16k_librosa"]
    target = int(round(len(gold) * ref["sample_rate"] / ref["frames"]))
    ours, sr = load_audio(golden / ref["name"], target)
    assert sr == target
    assert ours.dtype == np.float32
    assert_close(ours, gold, what="hubert_in_wav16k_librosa")
    raw, raw_sr = load_audio(golden / ref["name"], mono=False)
    assert raw.shape == (ref["channels"], ref["frames"]) and raw_sr == ref["sample_rate"]


def test_resample_matches_librosa_golden(golden):
    """32 kHz → 16 kHz of upstream's scaled training signal (MANIFEST §4.1, training path)."""
    data = load_npz(str(golden / "golden_hf.npz"))
    x = data["hubert_train_in_wav32k"]
    peak = np.abs(x).max()
    scaled = (x / peak * (0.95 * 0.5 * 1145.14) + 0.5 * 1145.14 * x).astype(np.float32)
    gold = data["hubert_train_dbg_wav16k_scaled"]
    assert_close(resample(scaled, 32000, 32000 * len(gold) // len(x)), gold, what="hubert_train_dbg_wav16k_scaled")


def _tone(sr: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=1).astype(np.float32)


SOUNDFILE_CASES = [
    ("wav", "PCM_U8", 8000, 1),
    ("wav", "PCM_16", 11025, 2),
    ("wav", "PCM_24", 44100, 6),
    ("wav", "PCM_32", 22050, 1),
    ("wav", "FLOAT", 96000, 2),
    ("flac", "PCM_16", 48000, 2),
    ("flac", "PCM_24", 7350, 1),
    ("ogg", "VORBIS", 32000, 2),
]


@pytest.mark.parametrize(("ext", "subtype", "sr", "channels"), SOUNDFILE_CASES)
def test_soundfile_formats_import(tmp_path, ext, subtype, sr, channels):
    path = tmp_path / f"in.{ext}"
    sf.write(path, _tone(sr, channels), sr, subtype=subtype)
    audio, rate = load_audio(path)
    assert rate == sr and audio.ndim == 1 and abs(len(audio) - sr) <= 1
    assert 0.2 < np.abs(audio).max() < 1.0
    multi, _ = load_audio(path, mono=False)
    assert multi.shape[0] == channels
    at16k, rate16 = load_audio(path, 16000)
    assert rate16 == 16000 and abs(len(at16k) - 16000) <= 2


AV_CASES = [
    ("mp3", "mp3", 44100, 2),
    ("m4a", "aac", 48000, 1),
    ("aac", "aac", 22050, 2),
    ("opus", "libopus", 48000, 1),
    ("webm", "libopus", 48000, 2),
    ("ogg", "libopus", 48000, 2),
]


@pytest.mark.parametrize(("ext", "codec", "sr", "channels"), AV_CASES)
def test_compressed_formats_import(tmp_path, ext, codec, sr, channels):
    av = pytest.importorskip("av")
    path = tmp_path / f"in.{ext}"
    signal = _tone(sr, channels, 1.5).T  # (C, T)
    with av.open(str(path), "w", format={"m4a": "mp4", "aac": "adts", "opus": "ogg"}.get(ext, ext)) as out:
        stream = out.add_stream(codec, rate=sr, layout="mono" if channels == 1 else "stereo")
        step = 960
        for i in range(0, signal.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(signal[:, i : i + step]), format="fltp", layout=stream.layout.name
            )
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    audio, rate = load_audio(path)
    assert rate == sr
    assert abs(len(audio) / sr - 1.5) < 0.15  # encoders add a little padding
    assert 0.2 < np.abs(audio).max() < 1.1
    assert probe_audio(path).channels == channels


def _bad_rows(voices):
    with open(voices / "bad" / "defects.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_bad_voice_files(voices):
    for row in _bad_rows(voices):
        path = voices / "bad" / row["file"]
        readable = row["subtype"] not in ("(not audio)", "") and float(row["duration_s"] or 0) > 0
        if readable:
            audio, sr = load_audio(path)
            assert sr == int(row["sample_rate"])
            assert abs(len(audio) / sr - float(row["duration_s"])) < 0.01
        else:
            with pytest.raises(AudioError, match=row["file"].replace(".", r"\.")):
                load_audio(path)


def test_two_hour_file_is_refused_without_decoding(tmp_path):
    """A sparse 2-hour WAV (header + holes): refused from its header, quickly, with the limit named."""
    sr, seconds = 8000, 2 * 3600
    data_bytes = sr * seconds * 2
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
    )
    path = tmp_path / "long.wav"
    with open(path, "wb") as f:
        f.write(header + b"data" + struct.pack("<I", data_bytes))
        f.truncate(44 + data_bytes)
    with pytest.raises(AudioError, match="2 h 0 min.*limit is 1 h"):
        load_audio(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", b"RIFF\x00\x00"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="x.wav"):
        load_audio(path)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")


def test_save_wav_pcm16_with_metadata(tmp_path):
    audio = np.linspace(-1.2, 1.2, 32000, dtype=np.float32)
    path = save_wav(
        tmp_path / "out.wav", audio, 32000, metadata={"comment": "AI-generated", "software": "SoVITS Studio"}
    )
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (32000, 1, "PCM_16")
    meta = read_wav_metadata(path)
    assert meta["comment"] == "AI-generated"
    assert meta["software"].startswith("SoVITS Studio")  # libsndfile appends its own version
    back, _ = load_audio(path)
    assert np.abs(back - np.clip(audio, -1, 1)).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    with pytest.raises(AudioError, match="metadata"):
        save_wav(tmp_path / "bad.wav", audio, 32000, metadata={"colour": "red"})
