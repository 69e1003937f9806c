"""SoVITS v2Pro / v2ProPlus beyond inference: config presets and upstream config dicts, the training forward
with each clip's speaker-verification embedding, the 7-period discriminator and its pretrained file, and LoRA
on a model with the speaker-verification layers (none of which the goldens cover, MANIFEST §7)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from golden_v2pro_utils import decompressed, runs

from studio.errors import ReferenceAudioError
from studio.models.lora import SOVITS_DEFAULT_TARGETS, LoRAConfig, add_lora, lora_state_dict, merge_lora
from studio.models.safe_pickle import safe_torch_load, save_torch_zip_bytes
from studio.models.sovits.checkpoint import load_sovits
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.discriminators import MultiPeriodDiscriminator, load_discriminator_state
from studio.models.sovits.synthesizer import SoVITSSynthesizer

SV_LAYERS = ("sv_emb", "ge_to512", "prelu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The tiny v2Pro golden model (its config sizes drive the small models below)."""
    return load_sovits(decompressed(runs()["models"]["s2_v2Pro"]["file"], tmp_path_factory.mktemp("v2pro")))


# ----------------------------------------------------------------------------------------------- config


def test_stored_upstream_configs_give_the_presets():
    for version in ("v2Pro", "v2ProPlus"):
        stored = runs()["models"][f"s2_{version}"]["config"]
        cfg = SoVITSConfig.from_hparams(stored)
        preset = SoVITSConfig.from_name(version)
        assert cfg.version == version and cfg.uses_speaker_verification
        assert (cfg.sv_dim, cfg.mpd_periods, cfg.p_dropout) == (preset.sv_dim, preset.mpd_periods, 0.0)
        assert cfg.upsample_kernel_sizes == tuple(stored["model"]["upsample_kernel_sizes"])
        assert cfg.to_hparams_model()["version"] == version
        assert SoVITSConfig.from_hparams({"model": cfg.to_hparams_model()}) == replace(cfg, segment_size=32)


def test_header_version_overrides_the_stored_one():
    v2_dict = {"model": SoVITSConfig.v2().to_hparams_model()}
    assert SoVITSConfig.from_hparams(v2_dict, version="v2ProPlus").sv_dim == SoVITSConfig.v2ProPlus().sv_dim
    assert not SoVITSConfig.from_hparams(v2_dict).uses_speaker_verification
    with pytest.raises(ValueError, match="v3"):
        SoVITSConfig.from_hparams({"model": {"version": "v3"}})
    with pytest.raises(ValueError, match="known"):
        SoVITSConfig.from_name("v5")


def test_without_sv_input_gin_must_match_mrte():
    with pytest.raises(ValueError, match="gin_channels .* must equal mrte_hidden_channels"):
        SoVITSSynthesizer(replace(SoVITSConfig.v2Pro(), sv_dim=0), with_posterior_encoder=False)


# ----------------------------------------------------------------------------------------------- training forward


def _batch(config: SoVITSConfig, frames: int = 40, b: int = 2) -> dict:
    gen = torch.Generator().manual_seed(7)
    return dict(
        ssl=torch.randn(b, config.ssl_dim, frames, generator=gen),
        spec=torch.rand(b, config.spec_channels, frames, generator=gen),
        spec_lengths=torch.tensor([frames, frames - 4]),
        phone_ids=torch.randint(0, config.n_symbols, (b, 9), generator=gen),
        phone_lengths=torch.tensor([9, 7]),
    )


def test_training_forward_uses_each_clips_embedding(tiny):
    torch.manual_seed(0)
    model = SoVITSSynthesizer(tiny.config, with_posterior_encoder=True)
    model.load_state_dict(tiny.model.state_dict(), strict=False)
    model.train()
    batch = _batch(tiny.config)
    emb = torch.randn(2, tiny.config.sv_dim, generator=torch.Generator().manual_seed(8))
    with pytest.raises(ReferenceAudioError, match="speaker-verification embedding"):
        model.forward_train(**batch)
    torch.manual_seed(1)
    out = model.forward_train(**batch, sv_emb=emb)
    assert out.wav_slice.shape == (2, 1, tiny.config.segment_size * tiny.config.samples_per_frame)
    (out.wav_slice.pow(2).mean() + out.m_p.pow(2).mean()).backward()
    for name in SV_LAYERS:  # the SV projection shapes ge (flow, decoder) and the MRTE input
        assert getattr(model, name).weight.grad.abs().sum() > 0, name
    torch.manual_seed(1)
    other = model.forward_train(**batch, sv_emb=emb.flip(0))
    assert not torch.allclose(other.m_p, out.m_p), "the embedding did not reach the prior"


# ----------------------------------------------------------------------------------------------- discriminator


def _legacy_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our parametrised weight-norm keys in the names upstream's s2D files use (weight_g / weight_v)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        renamed[key.replace(".parametrizations.weight.original1", ".weight_v")] = value
    return renamed


def test_v2pro_discriminator_and_its_pretrained_file(tmp_path: Path):
    width = 1 / 16  # upstream's layout at a fraction of the channels
    net_d = MultiPeriodDiscriminator.for_config(SoVITSConfig.v2Pro(), width)
    assert net_d.periods == (2, 3, 5, 7, 11, 17, 23) and len(net_d.discriminators) == 8
    wav = torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(2))
    real, fake, real_maps, _ = net_d(wav, wav * 0.5)
    assert len(real) == len(fake) == len(real_maps) == 8

    path = tmp_path / "s2Dv2Pro.pth"  # upstream's s2D layout: {"weight": state dict}, fp16
    state = {k: v.half() for k, v in _legacy_names(net_d.state_dict()).items()}
    path.write_bytes(save_torch_zip_bytes({"weight": state}))
    fresh = MultiPeriodDiscriminator.for_config(SoVITSConfig.v2Pro(), width)
    assert load_discriminator_state(fresh, safe_torch_load(path.read_bytes(), path)["weight"]) == []
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, net_d.state_dict()[key].half().float()), key
    v2_d = MultiPeriodDiscriminator.for_config(SoVITSConfig.v2(), width)
    problems = load_discriminator_state(v2_d, state)
    assert any("unexpected discriminators.7." in p for p in problems), problems


# ----------------------------------------------------------------------------------------------- LoRA


def test_lora_targets_skip_the_speaker_verification_layers(tiny):
    lora = LoRAConfig(rank=2, alpha=4.0, targets=SOVITS_DEFAULT_TARGETS)
    v2_like = SoVITSSynthesizer(
        replace(tiny.config, sv_dim=0, gin_channels=tiny.config.mrte_hidden_channels), with_posterior_encoder=False
    )
    model = copy.deepcopy(tiny.model)
    names = add_lora(model, lora)
    assert names == add_lora(v2_like, lora), "v2Pro adapters should sit where v2's do"
    assert not any(n.startswith(SV_LAYERS) for n in names)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for key, value in lora_state_dict(model).items():
            if key.endswith("lora_B"):
                value.copy_(torch.randn(value.shape, generator=gen) * 0.05)
    spec = torch.rand(1, tiny.config.spec_channels, 30, generator=gen)
    emb = torch.randn(1, tiny.config.sv_dim, generator=gen)
    codes = torch.randint(0, tiny.config.codebook_size, (1, 1, 6), generator=gen)
    phones = torch.randint(0, tiny.config.n_symbols, (1, 7), generator=gen)
    args = (codes, phones, [spec])
    adapted = model.decode(*args, noise_scale=0.0, sv_emb=[emb])
    merge_lora(model)
    assert list(model.state_dict()) == list(tiny.model.state_dict())
    merged = model.decode(*args, noise_scale=0.0, sv_emb=[emb])
    base = tiny.model.decode(*args, noise_scale=0.0, sv_emb=[emb])
    assert (merged - adapted).norm() < 1e-4 * adapted.norm() < (base - adapted).norm()


def test_official_export_of_a_merged_v2pro_keeps_its_header(tiny, tmp_path: Path):
    """Voice export (studio.voicepack.official): adapters folded in, written with upstream's 05/06 header."""
    from studio.voicepack.official import merged_sovits, stage_from_weights, stage_state_dict, write_official

    base_path = tiny.info.path
    lora = LoRAConfig(rank=2, alpha=4.0, targets=SOVITS_DEFAULT_TARGETS)
    probe = copy.deepcopy(tiny.model)
    add_lora(probe, lora)
    gen = torch.Generator().manual_seed(6)
    adapters = {
        k: torch.randn(v.shape, generator=gen) * 0.05 if k.endswith("lora_B") else v
        for k, v in lora_state_dict(probe).items()
    }
    merged = merged_sovits(base_path, adapters, lora, epoch=3, step=30)
    path = write_official("sovits", merged, tmp_path / "voice_e3_s30.pth")
    assert path.read_bytes()[:2] == base_path.read_bytes()[:2] == b"05"
    again = load_sovits(path)
    assert again.version == "v2Pro" and again.info.info_text == "3epoch_30iteration"
    assert again.info.hparams == tiny.info.hparams
    rebuilt = stage_from_weights("sovits", again.info.hparams, stage_state_dict("sovits", merged.model), "x")
    assert rebuilt.model.config.version == "v2Pro" and rebuilt.model.config.uses_speaker_verification
    for key, value in again.model.state_dict().items():
        assert torch.equal(value, rebuilt.model.state_dict()[key]), key
