"""Voice sharing end to end with the tiny models: training run → library voice → voice pack → import → same audio;
GSVI / official-pair imports; hostile zips and missing consent are refused without touching the library."""

from __future__ import annotations

import dataclasses
import json
import shutil
import stat
import struct
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.cli import main as cli_main
from studio.errors import CheckpointError, VoicePackError
from studio.inference.requests import SynthesisRequest
from studio.models.lora import GPT_DEFAULT_TARGETS, SOVITS_DEFAULT_TARGETS, LoRAConfig, add_lora, lora_state_dict
from studio.models.sovits.checkpoint import load_sovits
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.pretrained import PretrainedAssets
from studio.services.synthesis import SynthesisService
from studio.services.voice_packs import VoicePackService
from studio.training.run_layout import RunPaths
from studio.voicepack import ConsentRecord, sha256_file
from studio.voicepack.official import FoundReference
from studio.workspace import Workspace

TEXT = "Good morning."
RUN_ID = "20250101-120000-abcd"
CONSENT = ConsentRecord("Joe", "I recorded these clips and agree to share this voice.", "2025-01-01", True)


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture()
def layout(tmp_path: Path, tiny_s1_ckpt: Path, tiny_s2_pth: Path) -> PretrainedAssets:
    """A pretrained/ folder in upstream's layout holding the tiny models as the base models."""
    assets = PretrainedAssets(tmp_path / "pretrained")
    for src, dst in ((tiny_s1_ckpt, assets.gpt_path), (tiny_s2_pth, assets.sovits_path)):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return assets


@pytest.fixture()
def joe_clips(voices: Path) -> list[FoundReference]:
    """en_joe's clips with their transcripts from the dataset list."""
    root = voices / "en_joe"
    clips = []
    for line in (root / "dataset.list").read_text(encoding="utf-8").splitlines()[:3]:
        wav, _, lang, text = line.split("|", 3)
        clips.append(FoundReference(root / wav, text, lang.lower()))
    return clips


def _nudged_adapters(model: torch.nn.Module, config: LoRAConfig, seed: int) -> dict[str, torch.Tensor]:
    """Adapters as a training run would leave them: B moved away from zero."""
    add_lora(model, config)
    gen = torch.Generator().manual_seed(seed)
    state = lora_state_dict(model)
    return {k: (torch.randn(v.shape, generator=gen) * 0.05 if k.endswith("lora_B") else v) for k, v in state.items()}


def _fake_run(workspace_root: Path, assets: PretrainedAssets) -> RunPaths:
    """A finished LoRA run in the documented layout (studio/training/run_layout.py)."""
    paths = RunPaths.of(Workspace("joe", workspace_root), RUN_ID)
    paths.dir.mkdir(parents=True)
    configs = {
        "gpt": LoRAConfig(4, 8.0, targets=GPT_DEFAULT_TARGETS),
        "sovits": LoRAConfig(2, 2.0, targets=SOVITS_DEFAULT_TARGETS),
    }
    gpt, _, gpt_info = load_text2semantic(assets.gpt_path)
    sovits, _, sovits_info, _ = load_sovits(assets.sovits_path)
    stages = {}
    for seed, (stage, model, base, upstream) in enumerate(
        (("gpt", gpt, assets.gpt_path, gpt_info.config), ("sovits", sovits, assets.sovits_path, sovits_info.hparams))
    ):
        save_file(_nudged_adapters(model, configs[stage], seed), paths.weights(stage, lora=True))
        stages[stage] = {
            "mode": "lora",
            "weights": paths.weights(stage, lora=True).name,
            "lora": configs[stage].to_dict(),
            "base": {"path": str(base), "sha256": sha256_file(base), "size": base.stat().st_size},
            "model_config": {},
            "upstream_config": upstream,
            "epochs": 3,
            "steps": 40,
            "final_loss": 1.5,
            "sample": None,
        }
    result = {"format": 1, "name": "joe", "run_id": RUN_ID, "language": "en", "dataset": {"utterances": 12}}
    paths.result_json.write_text(json.dumps({**result, "stages": stages}), encoding="utf-8")
    return paths


@pytest.fixture()
def studio_env(tmp_path: Path, layout: PretrainedAssets, golden: Path):
    workspace = tmp_path / "workspace"
    service = VoicePackService(workspace, layout)
    synth = SynthesisService(
        layout, device="cpu", hubert_dir=golden / "hf_tiny_hubert", bert_dir=golden / "hf_tiny_bert"
    )
    return service, synth, workspace


def _speak(synth: SynthesisService, voice, seed: int = 11) -> np.ndarray:
    request = SynthesisRequest(
        text=TEXT, lang="en", reference=voice.reference_audio, ref_text=voice.reference_text,
        ref_lang=voice.reference_lang, seed=seed, max_tokens_per_sentence=20,
    )  # fmt: skip
    return synth.synthesize(request, voice.models).audio


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", ["lora", "merged"])
def test_export_then_import_speaks_exactly_as_before(studio_env, layout, joe_clips, tmp_path: Path, kind) -> None:
    service, synth, workspace = studio_env
    run = _fake_run(workspace, layout)
    voice = service.register_trained_voice("joe", RUN_ID, CONSENT, joe_clips)
    base_gpt = torch.load(layout.gpt_path, weights_only=True)["weight"]
    changed = [k for k, v in _gpt_weights(voice).items() if not torch.equal(v, base_gpt[k])]
    assert any("linear1" in k for k in changed) and any("in_proj_weight" in k for k in changed)  # adapters merged
    before = _speak(synth, voice)
    if kind == "merged":
        shutil.rmtree(run.dir)  # without its run the voice exports its merged weights

    result = service.export_voice("joe", tmp_path / "out" / "joe.zip")
    assert result.manifest.weights.kind == kind
    assert [c.text for c in result.manifest.references] == [c.text for c in joe_clips]
    imported = service.import_voice(result.pack, name="joe copy")

    assert np.array_equal(_speak(synth, imported), before)
    assert (imported.reference_text, imported.reference_lang) == (joe_clips[0].text, "en")
    assert [r["text"] for r in imported.references] == [c.text for c in joe_clips[1:]]
    assert imported.consent == dataclasses.asdict(CONSENT)
    for load in (_gpt_weights, _sovits_weights):  # the same fp16 weights (the config may differ in list/tuple)
        a, b = load(imported), load(voice)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _gpt_weights(voice) -> dict[str, torch.Tensor]:
    return torch.load(voice.gpt_path, weights_only=True)["weight"]


def _sovits_weights(voice) -> dict[str, torch.Tensor]:
    from studio.models.sovits.checkpoint import read_sovits_file

    return read_sovits_file(voice.sovits_path).weights


def test_cli_export_and_import(studio_env, layout, joe_clips, tmp_path: Path, capsys) -> None:
    service, _, workspace = studio_env
    _fake_run(workspace, layout)
    service.register_trained_voice("joe", RUN_ID, None, joe_clips[0])
    common = ["--workspace", str(workspace), "--pretrained", str(layout.root)]
    out = tmp_path / "joe.zip"

    assert cli_main(["export", "--name", "joe", "--out", str(out), *common]) == 1
    assert "consent" in capsys.readouterr().err and not out.exists()
    consent = ["--speaker", "Joe", "--statement", "Share it.", "--confirm-consent"]
    official = tmp_path / "gsv"
    assert cli_main(["export", "--name", "joe", "--out", str(out), "--official", str(official), *common, *consent]) == 0
    assert cli_main(["import", str(out), "--name", "from-pack", *common]) == 0
    assert cli_main(["import", str(official), "--name", "from-official", *common]) == 0
    voices = {v.name: v for v in service.library.list()}
    assert set(voices) == {"joe", "from-pack", "from-official"}
    assert voices["from-pack"].consent["speaker_name"] == "Joe"
    assert voices["from-official"].reference_text == joe_clips[0].text  # from the .lab sidecar
    assert voices["from-official"].gpt_path.read_bytes() == voices["joe"].gpt_path.read_bytes()


def test_export_without_confirmed_consent_is_refused(studio_env, layout, joe_clips, tmp_path: Path) -> None:
    service, _, workspace = studio_env
    _fake_run(workspace, layout)
    unconfirmed = ConsentRecord("Joe", "Maybe later.", "2025-01-01", False)
    service.register_trained_voice("joe", RUN_ID, unconfirmed, joe_clips[0])
    out = tmp_path / "joe.zip"
    with pytest.raises(VoicePackError, match="consent .* not confirmed"):
        service.export_voice("joe", out, official_dir=tmp_path / "official")
    with pytest.raises(VoicePackError, match="lacks the speaker's name"):
        service.export_voice("joe", out, consent=ConsentRecord(" ", "", "2025-01-01", True))
    assert not out.exists() and not (tmp_path / "official").exists()
    assert list(out.parent.glob("*.tmp")) == []


# ----------------------------------------------------------------------------------------------- hostile zips


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _declare_size(path: Path, name: str, size: int) -> None:
    """Rewrite the uncompressed size of ``name`` in both its local and central headers."""
    raw, encoded = bytearray(path.read_bytes()), name.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = raw.find(signature)
        while start != -1:
            if raw[start + name_at : start + name_at + len(encoded)] == encoded:
                raw[start + size_at : start + size_at + 4] = struct.pack("<I", size)
            start = raw.find(signature, start + 4)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("attack", ["dotdot", "absolute", "symlink", "one_gigabyte"])
def test_malicious_packs_are_refused_and_change_nothing(
    studio_env, layout, joe_clips, tmp_path: Path, monkeypatch, attack
) -> None:
    service, _, workspace = studio_env
    _fake_run(workspace, layout)
    service.register_trained_voice("joe", RUN_ID, CONSENT, joe_clips[0])
    good = service.export_voice("joe", tmp_path / "good.zip").pack
    absolute = f"/tmp/studio-evil-{uuid.uuid4().hex}.wav"
    entry = {"dotdot": "../../evil.wav", "absolute": absolute, "symlink": _symlink("references/link.wav")}.get(
        attack, "references/huge.wav"
    )
    bad = tmp_path / "incoming" / "bad.zip"
    bad.parent.mkdir()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr(entry, b"RIFF" * 8 if attack == "one_gigabyte" else b"/etc/passwd")
    if attack == "one_gigabyte":
        _declare_size(bad, "references/huge.wav", 1 << 30)
        assert zipfile.ZipFile(bad).getinfo("references/huge.wav").file_size == 1 << 30

    scratch = tmp_path / "scratch"  # the importer's temporary folders go here
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    library_before, around_before = _tree(workspace), _tree(tmp_path)
    with pytest.raises(VoicePackError, match="Refusing the voice pack"):
        service.import_voice(bad, name="evil")
    assert _tree(workspace) == library_before
    assert _tree(tmp_path) == around_before  # nothing beside the zip, nothing left in the scratch folder
    assert not Path(absolute).exists()
    assert [v.name for v in service.library.list()] == ["joe"]


# ----------------------------------------------------------------------------------------------- official / GSVI


@pytest.mark.parametrize(
    "clips, expected_default, expected_others",
    [
        (
            {"参考音频/中文/开心-今天天气真好.wav": None, "参考音频/中文/平静-我们明天再见吧.wav": None},
            ("我们明天再见吧", "zh", ""),
            [("今天天气真好", "zh", "开心")],
        ),
        (
            {"reference_audios/en/happy-Hello there.wav": None, "reference_audios/en/default-Good morning all.wav": None,
             "reference_audios/ja/【悲しい】さようなら.wav": None},
            ("Good morning all", "en", ""),
            [("Hello there", "en", "happy"), ("さようなら", "ja", "悲しい")],
        ),
    ],
    ids=["zh-folders", "en-ja-folders"],
)  # fmt: skip
def test_gsvi_folder_imports_transcripts_languages_and_emotions(
    studio_env, layout, joe_clips, tmp_path: Path, clips, expected_default, expected_others
) -> None:
    service, _, _ = studio_env
    folder = tmp_path / "胡桃"
    folder.mkdir()
    shutil.copyfile(layout.gpt_path, folder / "胡桃-e10.ckpt")
    shutil.copyfile(layout.sovits_path, folder / "胡桃_e10_s200.pth")
    for rel in clips:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(joe_clips[0].path, folder / rel)
    voice = service.import_voice(folder)
    assert voice.name == "胡桃" and voice.origin == "imported-official"
    text, lang, _ = expected_default
    assert (voice.reference_text, voice.reference_lang) == (text, lang)
    assert [(r["text"], r["language"], r["emotion"]) for r in voice.references] == expected_others
    assert voice.gpt_path.read_bytes() == layout.gpt_path.read_bytes()
    assert all((voice.folder / r["file"]).is_file() for r in voice.references)


def test_official_pair_given_as_files_and_bad_pairs(studio_env, layout, joe_clips, tmp_path: Path) -> None:
    service, _, workspace = studio_env
    src = tmp_path / "download"
    src.mkdir()
    gpt, sovits = src / "alice-e8.ckpt", src / "alice_e8_s96.pth"
    shutil.copyfile(layout.gpt_path, gpt)
    shutil.copyfile(layout.sovits_path, sovits)
    clip = shutil.copyfile(joe_clips[1].path, src / "ref_01.wav")
    with pytest.raises(VoicePackError, match="No reference clip"):
        service.import_voice([gpt, sovits])
    swapped = src / "swapped"
    swapped.mkdir()
    shutil.copyfile(layout.sovits_path, swapped / "x.ckpt")
    shutil.copyfile(layout.gpt_path, swapped / "x.pth")
    shutil.copyfile(clip, swapped / "Hello.wav")
    with pytest.raises(CheckpointError, match="SoVITS"):
        service.import_voice(swapped)
    assert not (workspace / "voices").exists() or service.library.list() == []

    voice = service.import_voice([gpt, sovits, clip], reference_lang="en")
    assert voice.name == "alice"
    assert voice.reference_text == ""  # "ref_01" is an id, not a transcript: reference-free until one is given
    clip.with_suffix(".lab").write_text(joe_clips[1].text, encoding="utf-8")
    voice = service.import_voice([gpt, sovits, clip], reference_lang="en", overwrite=True)
    assert (voice.reference_text, voice.reference_lang) == (joe_clips[1].text, "en")


def test_an_adapter_pack_needs_the_base_models_it_was_trained_on(studio_env, layout, joe_clips, tmp_path) -> None:
    service, _, workspace = studio_env
    _fake_run(workspace, layout)
    service.register_trained_voice("joe", RUN_ID, CONSENT, joe_clips[0])
    pack = service.export_voice("joe", tmp_path / "joe.zip")
    assert pack.manifest.weights.kind == "lora" and pack.manifest.base_model["gpt"].file == layout.gpt_path.name
    layout.gpt_path.write_bytes(layout.gpt_path.read_bytes() + b"\0")  # another base model under the same name
    library_before = _tree(workspace)
    with pytest.raises(VoicePackError, match="another base gpt model"):
        service.import_voice(pack.pack, name="elsewhere")
    assert _tree(workspace) == library_before
