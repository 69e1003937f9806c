"""Official-format export: LoRA merged into the tiny base models, written as upstream's .ckpt / .pth (SPEC §9.3–9.4),
and read back through our own official-file loaders with the same outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from studio.errors import VoicePackError
from studio.models.lora import GPT_DEFAULT_TARGETS, SOVITS_DEFAULT_TARGETS, LoRAConfig, add_lora, lora_state_dict
from studio.models.sovits.checkpoint import load_sovits, read_sovits_file
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.voicepack.official import (
    FoundReference,
    export_official_folder,
    merged_gpt,
    merged_sovits,
    official_file_names,
    scan_official_source,
    write_official,
)

GPT_LORA = LoRAConfig(rank=4, alpha=8.0, targets=GPT_DEFAULT_TARGETS)
SOVITS_LORA = LoRAConfig(rank=2, alpha=4.0, targets=SOVITS_DEFAULT_TARGETS)


def _adapters(model: torch.nn.Module, config: LoRAConfig, seed: int) -> dict[str, torch.Tensor]:
    """Adapters of a trained run: random B (a fresh adapter has B = 0 and would change nothing)."""
    probe = copy.deepcopy(model)
    add_lora(probe, config)
    gen = torch.Generator().manual_seed(seed)
    return {
        k: (torch.randn(v.shape, generator=gen) * 0.05 if k.endswith("lora_B") else v)
        for k, v in lora_state_dict(probe).items()
    }


def _fp16_rounded(model: torch.nn.Module) -> torch.nn.Module:
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return rounded


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def test_gpt_export_has_the_official_layout_and_loads_back(tiny_s1_ckpt: Path, tmp_path: Path) -> None:
    base, _, base_info = load_text2semantic(tiny_s1_ckpt)
    merged = merged_gpt(tiny_s1_ckpt, _adapters(base, GPT_LORA, 0), GPT_LORA.to_dict(), epoch=7)
    path = write_official("gpt", merged, tmp_path / official_file_names("voice", 7, 70)[0])
    assert path.name == "voice-e7.ckpt"

    raw = torch.load(path, map_location="cpu", weights_only=True)  # SPEC §9.3: weight / config / info
    assert list(raw) == ["weight", "config", "info"] and raw["info"] == "GPT-e7"
    assert raw["config"] == base_info.config
    assert all(k.startswith("model.") and v.dtype == torch.float16 for k, v in raw["weight"].items())
    assert {k[len("model.") :] for k in raw["weight"]} == set(base.state_dict())

    loaded, config, _ = load_text2semantic(path)
    rounded = _fp16_rounded(merged.model)
    gen = torch.Generator().manual_seed(3)
    phones = torch.randint(0, config.phoneme_vocab_size, (2, 9), generator=gen)
    bert = torch.randn(2, config.bert_dim, 9, generator=gen)
    semantic = torch.randint(0, config.vocab_size - 1, (2, 6), generator=gen)
    with torch.no_grad():
        out_loaded, out_rounded = loaded(phones, bert, semantic), rounded(phones, bert, semantic)
        out_merged, out_base = merged.model(phones, bert, semantic), base(phones, bert, semantic)
    assert torch.equal(out_loaded, out_rounded)  # the file holds exactly the fp16-rounded merged weights
    # fp16 keeps 11 significant bits (relative step 2^-11 ≈ 5e-4 per weight): the loaded model stays within that
    # order of the full-precision merge, far closer than the adapters moved it away from the base
    assert _rel(out_loaded, out_merged) < 1e-2 < _rel(out_merged, out_base)


def test_sovits_export_has_the_official_layout_and_loads_back(tiny_s2_pth: Path, tmp_path: Path) -> None:
    base, config, base_info, _ = load_sovits(tiny_s2_pth)
    merged = merged_sovits(tiny_s2_pth, _adapters(base, SOVITS_LORA, 1), SOVITS_LORA, epoch=4, step=96)
    path = write_official("sovits", merged, tmp_path / official_file_names("voice", 4, 96)[1])
    assert path.name == "voice_e4_s96.pth"

    assert path.read_bytes()[:2] == b"PK"  # SPEC §9.4: v2 exports keep the zip magic
    contents = read_sovits_file(path)
    assert contents.info_text == "4epoch_96iteration" and contents.hparams == base_info.hparams
    assert all(v.dtype == torch.float16 for v in contents.weights.values() if v.is_floating_point())
    assert not any("enc_q" in k for k in contents.weights)

    loaded, _, _, version = load_sovits(path)
    assert version == "v2"
    rounded = _fp16_rounded(merged.model)
    gen = torch.Generator().manual_seed(5)
    codes = torch.randint(0, config.codebook_size, (1, 1, 6), generator=gen)
    phones = torch.randint(0, config.n_symbols, (1, 7), generator=gen)
    spec = torch.rand(1, config.spec_channels, 20, generator=gen)
    with torch.no_grad():
        wavs = [m.decode(codes, phones, spec, noise_scale=0.0) for m in (loaded, rounded, merged.model, base)]
    assert torch.equal(wavs[0], wavs[1])
    assert _rel(wavs[0], wavs[2]) < 1e-2 < _rel(wavs[2], wavs[3])


def test_adapters_that_do_not_fit_are_refused(tiny_s1_ckpt: Path) -> None:
    base, _, _ = load_text2semantic(tiny_s1_ckpt)
    adapters = _adapters(base, GPT_LORA, 0)
    with pytest.raises(VoicePackError, match="do not fit"):
        merged_gpt(tiny_s1_ckpt, adapters, LoRAConfig(rank=2, alpha=2.0, targets=GPT_DEFAULT_TARGETS))
    with pytest.raises(VoicePackError, match="without their LoRA settings"):
        merged_gpt(tiny_s1_ckpt, adapters, None)


def test_official_folder_export_reads_back_as_a_gsvi_folder(
    tiny_s1_ckpt: Path, tiny_s2_pth: Path, voices: Path, tmp_path: Path
) -> None:
    clips_dir = voices / "en_joe" / "clips"
    clips = [
        FoundReference(clips_dir / "en_joe_000.wav", 'He said: "Wait?" / and left.', "en"),
        FoundReference(clips_dir / "en_joe_001.wav", "今天天气真好", "zh", "开心"),
    ]
    gpt, sovits = export_official_folder(tmp_path / "out", "Joe", tiny_s1_ckpt, tiny_s2_pth, clips, epoch=5, step=50)
    assert (gpt.name, sovits.name) == ("Joe-e5.ckpt", "Joe_e5_s50.pth")
    assert gpt.read_bytes() == tiny_s1_ckpt.read_bytes()

    source = scan_official_source([tmp_path / "out"])
    assert (source.gpt, source.sovits) == (gpt, sovits)
    found = {(c.text, c.language, c.emotion) for c in source.references}
    assert found == {(c.text, c.language, c.emotion) for c in clips}  # exact text kept despite ':' '"' '?' '/'
    assert source.references[0].emotion == ""  # the neutral clip is the default
