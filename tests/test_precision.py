"""Precision modes (issue 9): fp32 stays on the goldens, bf16/int8 stay inside the quality bounds written in
``studio.models.precision.QUALITY_BOUNDS``, ``auto`` measures once per machine, and a user can pick a mode."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from golden_utils import assert_close, load_json, load_npz

from studio.inference import precision_choice
from studio.models.precision import (
    QUALITY_BOUNDS,
    Bf16Linear,
    Int8Linear,
    check_mode,
    convert_gpt,
    convert_linears,
    int8_available,
    plan_for,
    prepare_sovits,
)
from studio.models.precision_quality import gpt_agreement, relative_error, snr_db, teacher_forced_logits
from studio.models.sovits.checkpoint import load_sovits
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.text2semantic import Text2SemanticConfig, Text2SemanticModel

LIGHT = ["bf16"] + (["int8"] if int8_available() else [])


def t(array) -> torch.Tensor:
    return torch.from_numpy(array)


@pytest.fixture(scope="module")
def g(golden: Path) -> dict:
    return load_npz(str(golden / "golden_tensors.npz"))


@pytest.fixture(scope="module")
def official_gpt() -> Text2SemanticModel:
    """Official v2 sizes with random weights (what the bounds are meant for: 24 layers, 512 wide)."""
    torch.manual_seed(0)
    return Text2SemanticModel(Text2SemanticConfig.v2()).eval()


def _probe(model, n_text=40, n_tok=40):
    gen = torch.Generator().manual_seed(7)
    phones = torch.randint(0, model.config.phoneme_vocab_size, (1, n_text), generator=gen)
    bert = torch.randn(1, model.config.bert_dim, n_text, generator=gen) * 0.1
    tokens = torch.randint(0, 1024, (1, n_tok), generator=gen)
    return phones, bert, tokens


# ------------------------------------------------------------------------------------------------ fp32 = goldens


def test_fp32_decoder_fast_path_matches_every_golden_speed(tiny_s2_pth, g, golden):
    """The channels-last decoder used by every mode (fp32 here) stays within 1e-5 of upstream's waveforms."""
    model = load_sovits(tiny_s2_pth).model
    prepare_sovits(model, "fp32")
    assert model.dec.__dict__.get("fast") is not None
    speeds = load_json(golden / "golden_runs.json")["s2"]["speeds"]
    with torch.inference_mode():
        wav = model.decode(t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), t(g["spec_out_linear"]), noise_scale=0.0)
        assert_close(wav, g["s2_out_wav_speed1"], tol=1e-5, what="fast fp32 wav speed 1")
        for i, speed in enumerate(speeds):
            wav = model.decode(
                t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), t(g["spec_out_linear"]), noise_scale=0.0, speed=speed
            )
            assert_close(wav, g[f"s2_out_wav_speed_i{i}"], tol=1e-5, what=f"fast fp32 wav at speed {speed}")


def test_fast_decoder_is_inference_only(tiny_s2_pth, g):
    """With gradients on (training), the generator runs its own trainable arithmetic, not the folded copy."""
    model = load_sovits(tiny_s2_pth).model
    prepare_sovits(model, "bf16")
    z = torch.randn(1, model.config.inter_channels, 6)
    out = model.dec(z)
    assert out.requires_grad and out.dtype == torch.float32


def test_fp32_gpt_is_untouched(official_gpt):
    model = convert_gpt(copy.deepcopy(official_gpt), "fp32")
    probe = _probe(model, 12, 12)
    assert torch.equal(teacher_forced_logits(model, *probe), teacher_forced_logits(official_gpt, *probe))


# ------------------------------------------------------------------------------------------------ light modes


@pytest.mark.parametrize("mode", LIGHT)
def test_gpt_light_modes_stay_inside_the_bounds(official_gpt, mode):
    probe = _probe(official_gpt)
    reference = teacher_forced_logits(official_gpt, *probe)
    light = convert_gpt(copy.deepcopy(official_gpt), mode)
    kinds = {type(m) for m in light.h.modules()}
    assert (Int8Linear if mode == "int8" else Bf16Linear) in kinds
    assert torch.nn.Linear not in kinds, "every decoder matrix is converted"
    assert light.h.layers[0].self_attn.in_proj_weight.numel() == 0, "the fp32 copy is released"
    agreement = gpt_agreement(reference, teacher_forced_logits(light, *probe))
    assert agreement.steps == probe[2].shape[1]
    assert agreement.kl <= QUALITY_BOUNDS.gpt_kl_max, agreement
    assert agreement.top1 >= QUALITY_BOUNDS.gpt_top1_min, agreement
    assert agreement.kl > 0, "a light mode that changes nothing converted nothing"


def test_gpt_agreement_notices_a_broken_model(official_gpt):
    """The measure can fail: a GPT with scrambled decoder weights is far outside the bounds."""
    probe = _probe(official_gpt, 16, 16)
    reference = teacher_forced_logits(official_gpt, *probe)
    broken = copy.deepcopy(official_gpt)
    with torch.no_grad():
        for layer in broken.h.layers:
            layer.linear2.weight.mul_(-3.0)
    agreement = gpt_agreement(reference, teacher_forced_logits(broken, *probe))
    assert not agreement.passes


def test_sovits_bf16_decoder_snr():
    """Official-size v2 decoder, random weights: bf16 keeps the waveform above the SNR bound."""
    torch.manual_seed(0)
    exact = SoVITSSynthesizer(SoVITSConfig.v2()).eval()
    light = copy.deepcopy(exact)
    prepare_sovits(light, "bf16")
    codes = torch.randint(0, 1024, (1, 1, 16))
    phones = torch.randint(0, 700, (1, 8))
    ref = [torch.rand(1, exact.config.spec_channels, 60)]
    with torch.inference_mode():
        a = exact.decode(codes, phones, ref, noise_scale=0.0)
        b = light.decode(codes, phones, ref, noise_scale=0.0)
    assert a.shape == b.shape
    snr = snr_db(a, b)
    assert QUALITY_BOUNDS.sovits_snr_min_db <= snr < float("inf"), snr


@pytest.mark.parametrize("mode", LIGHT)
def test_bert_features_light_modes(golden, mode):
    """The Chinese BERT's linears in a light mode: features within the relative-error bound."""
    from studio.models.text_features import ChineseBertFeatures

    bert = ChineseBertFeatures(golden / "hf_tiny_bert")
    text, word2ph = "你好世界", [2, 2, 2, 2]
    reference = bert.phone_features(text, word2ph)
    converted = convert_linears(bert.model, mode)
    assert converted > 0
    err = relative_error(reference, bert.phone_features(text, word2ph))
    assert 0 < err <= QUALITY_BOUNDS.features_rel_max, err


# ------------------------------------------------------------------------------------------------ choosing


def test_modes_are_checked_in_words():
    assert check_mode(" INT8 ") == "int8"
    assert check_mode("auto", allow_auto=True) == "auto"
    with pytest.raises(ValueError, match="auto, fp32, bf16, int8"):
        check_mode("fp16", allow_auto=True)
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        check_mode("auto")


def test_plans_follow_the_machine():
    """int8 keeps the decoder fp32 where bf16 convolutions are slow (AVX2-only CPUs); int8 is CPU-only."""
    assert plan_for("int8", fast_bf16=False).sovits == "fp32"
    assert plan_for("int8", fast_bf16=True).sovits == "bf16"
    assert plan_for("bf16", fast_bf16=False).gpt == "bf16"
    gpu = plan_for("int8", fast_bf16=True, device="cuda")
    assert (gpu.mode, gpu.gpt) == ("bf16", "bf16") and "CPU" in gpu.reason
    exact = plan_for("fp32", fast_bf16=True)
    assert (exact.gpt, exact.sovits, exact.bert) == ("fp32", "fp32", "fp32")


def test_auto_measures_once_and_remeasures_a_damaged_record(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path))
    calls = []
    real = precision_choice.measure_speeds

    def counted(repeats: int = 5):
        calls.append(repeats)
        return real(repeats=2)

    monkeypatch.setattr(precision_choice, "_measure_in_child", counted)
    first = precision_choice.resolve_plan("auto")
    record = json.loads((tmp_path / "precision.json").read_text())
    assert record["machine"] == precision_choice.machine_key()
    assert set(record["gpt_ms"]) >= {"fp32", "bf16"}
    assert "measured GPT step speed" in first.reason
    assert precision_choice.resolve_plan("auto") == first and len(calls) == 1
    (tmp_path / "precision.json").write_text("{ not json")
    precision_choice.resolve_plan("auto")
    assert len(calls) == 2
    assert json.loads((tmp_path / "precision.json").read_text())["format"] == precision_choice._FORMAT


def test_a_failing_gpt_goes_back_to_fp32(official_gpt, tiny_s2_pth, monkeypatch):
    """A converted GPT outside the bounds is reported and replaced by fp32 (the service reloads it)."""
    from studio.models import precision as precision_module

    strict = precision_module.QualityBounds(gpt_kl_max=0.0, gpt_top1_min=1.01)
    monkeypatch.setattr("studio.models.precision_quality.QUALITY_BOUNDS", strict)
    sovits = load_sovits(tiny_s2_pth).model
    plan, reload_gpt = precision_choice.apply_plan(
        copy.deepcopy(official_gpt), sovits, plan_for("bf16", fast_bf16=True)
    )
    assert reload_gpt and plan.gpt == "fp32" and "failed its quality check" in plan.reason


def _mapped(path: Path) -> bool:
    """Whether ``path`` is memory-mapped into this process (Linux)."""
    target = str(path.resolve())
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        return any(line.rstrip().endswith(target) for line in maps)


@pytest.mark.parametrize("mode", LIGHT)
def test_a_converted_gpt_lets_go_of_its_fp32_file(tiny_s1_ckpt, mode, tmp_path):
    """Loaded from the memory-mapped cache, the fp32 GPT *is* the file; once converted, nothing may keep the file
    mapped (its pages, all read by the conversion, would stay resident for nothing)."""
    import gc
    import shutil

    from studio.models import weights_cache
    from studio.models.text2semantic_checkpoint import load_text2semantic

    own = shutil.copyfile(tiny_s1_ckpt, tmp_path / "own_s1.ckpt")  # a cache file no other test's model maps
    model = load_text2semantic(own, cache=True).model
    cache = next(p for p in weights_cache.cache_candidates(own) if p.is_file())
    assert _mapped(cache), "the fp32 model is backed by its cache file"
    probe = _probe(model, 8, 8)
    reference = teacher_forced_logits(model, *probe)
    convert_gpt(model, mode)
    gc.collect()
    assert not _mapped(cache)
    assert gpt_agreement(reference, teacher_forced_logits(model, *probe)).top1 > 0.5  # still the same model


def test_the_command_line_offers_every_mode():
    import argparse

    from studio.commands.argtypes import add_precision_argument
    from studio.models.precision import PRECISION_CHOICES

    parser = argparse.ArgumentParser()
    add_precision_argument(parser)
    assert parser.parse_args([]).precision == "auto"
    assert tuple(parser._option_string_actions["--precision"].choices) == PRECISION_CHOICES


@pytest.mark.parametrize("frames", [7, 32, 33, 128, 129, 300])
def test_windowed_decoding_equals_the_whole_sequence(frames):
    """The CPU decoder works in fixed windows (one kernel build per process, not one per sentence length); cut
    margins and the padded end leave the waveform what the plain generator gives for the whole sequence."""
    from studio.models.sovits import fast_decoder
    from studio.models.sovits.fast_decoder import prepare_generator, release_generator

    torch.manual_seed(0)
    dec = SoVITSSynthesizer(SoVITSConfig.v2()).eval().dec
    z = torch.randn(1, dec.conv_pre.in_channels, frames)
    g = torch.randn(1, dec.cond.in_channels, 1) if hasattr(dec, "cond") else None
    with torch.inference_mode():
        plain = dec(z, g=g)
        prepare_generator(dec, torch.float32)
        windowed = dec(z, g=g)
        release_generator(dec)
    n_windows = 1 + max(0, -(-(frames - fast_decoder.WINDOW) // (fast_decoder.WINDOW - 2 * fast_decoder.MARGIN)))
    assert windowed.shape == plain.shape
    assert relative_error(plain, windowed) < 1e-5, (frames, n_windows)


@pytest.mark.parametrize("mode", LIGHT)
def test_a_voice_quality_check_is_kept_per_gpt_file(tiny_s1_ckpt, tiny_s2_pth, mode, tmp_path, monkeypatch):
    """The second load of a voice reuses its GPT's quality verdict (two fp32/light passes saved); an edited GPT
    file, or a damaged verdict file, is checked again."""
    import os
    import shutil

    from studio.models.text2semantic_checkpoint import load_text2semantic

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    passes = []

    def counted(*args):
        passes.append(1)
        return teacher_forced_logits(*args)

    monkeypatch.setattr(precision_choice, "teacher_forced_logits", counted)
    own = Path(shutil.copyfile(tiny_s1_ckpt, tmp_path / "voice.ckpt"))
    sovits = load_sovits(tiny_s2_pth).model
    plan = plan_for(mode, fast_bf16=True)

    def load() -> tuple:
        gpt = load_text2semantic(own).model
        return precision_choice.apply_plan(gpt, sovits, plan, precision_choice.gpt_identity(own))

    first = load()
    assert len(passes) == 2 and not first[1]
    assert load() == first and len(passes) == 2  # kept
    info = own.stat()
    os.utime(own, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    assert load() == first and len(passes) == 4  # an edited file is checked again
    (tmp_path / "cache" / "gpt_checks.json").write_text("{ not json")
    assert load() == first and len(passes) == 6
    assert json.loads((tmp_path / "cache" / "gpt_checks.json").read_text())["format"] == 1
