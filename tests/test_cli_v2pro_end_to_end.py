"""A tiny v2ProPlus voice through the whole chain from the command line: prep → train (default base = the best
present: v2ProPlus) → best-epoch scores → export (voice pack + official files with upstream's ``06`` header) →
import (the pack, and the official files as a GSVI-style folder) → synth. The base folder holds only the tiny
v2ProPlus base of ``golden_v2pro/`` (see ``tests/conftest.py: build_tiny_v2proplus_pretrained``)."""

from __future__ import annotations

import json
import zipfile

import pytest
import soundfile as sf
from safetensors.torch import load_file

from studio.cli import main

pytestmark = pytest.mark.slow

VERSION = "v2ProPlus"
N_CLIPS = 5  # about 25 s of speech: enough for training (20 s), little Whisper and SV time


def test_v2proplus_voice_from_prep_to_synth(tiny_v2proplus_pretrained, voices, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path / "ws"))
    project = tmp_path / "ws" / "ana"
    clips = sorted(str(p) for p in (voices / "en_joe" / "clips").glob("*.wav"))[:N_CLIPS]
    pre = ["--pretrained", str(tiny_v2proplus_pretrained)]

    assert main(["prep", *clips, "--name", "ana", "--lang", "en", "--no-slice"]) == 0
    capsys.readouterr()
    assert main(["train", "--name", "ana", *pre, "--max-steps", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"training from base {VERSION}" in printed
    (run,) = [p.parent for p in (project / "runs").glob("*/result.json")]
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result["settings"]["base"] == VERSION
    assert result["stages"]["sovits"]["base"]["path"].endswith("s2Gv2ProPlus.pth")
    assert result["stages"]["gpt"]["base"]["path"].endswith("s1v3.ckpt")
    features = [load_file(f) for f in (project / "features").glob("*.safetensors")]
    assert features and all(t["sv_emb"].shape == (20480,) for t in features)  # one SV embedding per clip
    # best epoch by listening: the table is printed and stored with a recommendation
    report = json.loads((run / "epochs.json").read_text(encoding="utf-8"))
    assert report["recommended"] in [e["number"] for e in report["scores"]]
    assert report["embedder"] == "sv-eres2netv2"  # similarity measured with the base's own SV model
    assert "recommended: epoch" in printed

    pack, official = tmp_path / "ana.zip", tmp_path / "official"
    consent = ["--speaker", "Ana", "--statement", "My own voice, shared for testing.", "--confirm-consent"]
    partial = ["--run", run.name]  # stopped by --max-steps: exported only when named
    assert main(["export", "--name", "ana", *pre, *partial, "--out", str(pack), "--official", str(official), *consent]) == 0
    with zipfile.ZipFile(pack) as zf:
        assert json.loads(zf.read("manifest.json"))["model_version"] == VERSION
    (pth,) = official.rglob("*.pth")
    assert pth.read_bytes()[:2] == b"06"  # upstream's v2ProPlus header, so GPT-SoVITS loads it as v2ProPlus

    assert main(["import", str(pack), "--name", "ana-copy", *pre]) == 0
    assert main(["import", str(official), "--name", "ana-official", *pre]) == 0
    for name in ("ana-copy", "ana-official"):
        voice = json.loads((tmp_path / "ws" / "voices" / name / "voice.json").read_text(encoding="utf-8"))
        assert voice["model_version"] == VERSION
        assert (tmp_path / "ws" / "voices" / name / "sovits.pth").read_bytes()[:2] == b"06"

    out = tmp_path / "ana.wav"
    assert main(["synth", "--voice", "ana-copy", *pre, "--text", "Hello there.", "--lang", "en",
                 "--out", str(out), "--seed", "1", "--max-tokens", "30", "--device", "cpu"]) == 0  # fmt: skip
    info = sf.info(out)
    assert info.samplerate == 32000 and info.frames > 0
