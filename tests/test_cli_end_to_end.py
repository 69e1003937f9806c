"""The whole journey from the command line with tiny models: prep → train → export → import → synth."""

from __future__ import annotations

import zipfile

import pytest
import soundfile as sf

from studio.cli import main

pytestmark = pytest.mark.slow


def test_prep_train_export_import_synth(tiny_pretrained, voices, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path / "ws"))
    clips = sorted(str(p) for p in (voices / "en_joe" / "clips").glob("*.wav"))
    pre = ["--pretrained", str(tiny_pretrained)]

    assert main(["prep", *clips, "--name", "joe", "--lang", "en", "--no-slice"]) == 0
    dataset = (tmp_path / "ws" / "joe" / "dataset.list").read_text(encoding="utf-8").splitlines()
    assert len(dataset) == len(clips) and all(line.split("|")[3].strip() for line in dataset)

    assert main(["train", "--name", "joe", *pre, "--stage", "both", "--max-steps", "2", "--device", "cpu"]) == 0
    runs = list((tmp_path / "ws" / "joe" / "runs").glob("*/result.json"))
    assert len(runs) == 1
    run = runs[0].parent
    assert (run / "gpt_lora.safetensors").is_file() and (run / "sovits_lora.safetensors").is_file()
    assert list((run / "samples").glob("*.wav")), "an epoch sample should be there to listen to"
    printed = capsys.readouterr().out  # the epochs were compared by listening, as the job's last stage
    assert "[epochs] stage_done" in printed and "similarity" in printed and "★ recommended: epoch" in printed
    assert (run / "epochs.json").is_file()

    # export without consent is refused; with it, the project becomes a library voice and a pack
    pack = tmp_path / "joe.zip"
    assert main(["export", "--name", "joe", *pre, "--out", str(pack)]) == 1
    assert not pack.exists()
    consent = ["--speaker", "Joe", "--statement", "My own voice, shared for testing.", "--confirm-consent"]
    # a 2-step trial is not exported silently: it must be named
    assert main(["export", "--name", "joe", *pre, "--out", str(pack), *consent]) == 1
    assert f"export it anyway with --run {run.name}" in capsys.readouterr().err and not pack.exists()
    assert main(["export", "--name", "joe", *pre, "--out", str(pack), *consent, "--run", run.name]) == 0
    assert f"from run {run.name}" in capsys.readouterr().out
    with zipfile.ZipFile(pack) as zf:
        assert "manifest.json" in zf.namelist()

    assert main(["import", str(pack), "--name", "joe-copy", *pre]) == 0
    out = tmp_path / "joe.wav"
    assert main(["synth", "--voice", "joe-copy", *pre, "--text", "Hello there.", "--lang", "en",
                 "--out", str(out), "--seed", "1", "--max-tokens", "30", "--device", "cpu"]) == 0  # fmt: skip
    info = sf.info(out)
    assert info.samplerate == 32000 and info.frames > 0
    capsys.readouterr()
