"""The SoVITS decoder's windows on OpenVINO (the light modes on a CPU): the same waveform as PyTorch's path in
fp32, within the quality bound in bf16, chosen by measurement, forced by the environment, and PyTorch decodes
whenever OpenVINO cannot."""

from __future__ import annotations

import copy

import pytest
import torch

from studio.inference import precision_choice
from studio.models.precision import QUALITY_BOUNDS, plan_for, prepare_sovits
from studio.models.precision_quality import snr_db
from studio.models.sovits import openvino_decoder
from studio.models.sovits.fast_decoder import SHORT_WINDOW, WINDOW, FastGenerator

pytestmark = pytest.mark.skipif(not openvino_decoder.available(), reason="OpenVINO is not installed")


@pytest.fixture(scope="module")
def tiny_gpt(golden):
    from studio.models.text2semantic_checkpoint import load_text2semantic

    return load_text2semantic(golden / "tiny_s1.ckpt").model.eval()


@pytest.fixture(scope="module")
def tiny_dec(tiny_s2_pth):
    from studio.models.sovits.checkpoint import load_sovits

    return load_sovits(tiny_s2_pth).model.eval().dec


@pytest.mark.parametrize("frames", [7, SHORT_WINDOW, SHORT_WINDOW + 1, WINDOW, WINDOW + 1, 300])
def test_openvino_windows_give_pytorchs_waveform(tiny_dec, frames):
    """fp32 on both sides: every length (one short padded window, a padded full window, several windows with
    the last moved back to the end) gives the waveform PyTorch's windows give, and that of the whole sequence."""
    exact = FastGenerator(tiny_dec, torch.float32)
    fast = FastGenerator(tiny_dec, torch.float32)
    assert openvino_decoder.attach(fast, bf16=False) and fast.openvino is not None
    torch.manual_seed(frames)
    x = torch.randn(1, exact.conv_pre.weight.shape[1], frames)
    g = torch.randn(1, exact.cond.weight.shape[1], 1) if exact.cond is not None else None
    with torch.inference_mode():
        whole, torch_windows, ov_windows = exact._run(x, g), exact(x, g), fast(x, g)
    assert ov_windows.shape == whole.shape == (1, 1, frames * exact.hop)
    for name, reference in (("PyTorch's windows", torch_windows), ("the whole sequence", whole)):
        error = ((ov_windows - reference).norm() / reference.norm()).item()
        assert error < 1e-5, f"{frames} frames: OpenVINO vs {name}: relative error {error:.2e}"


def test_openvino_bf16_keeps_the_quality_bound():
    """Official-size v2 decoder, random weights: bf16 on OpenVINO stays above the SNR bound of the light modes."""
    from studio.models.sovits.config import SoVITSConfig
    from studio.models.sovits.synthesizer import SoVITSSynthesizer

    torch.manual_seed(0)
    exact = SoVITSSynthesizer(SoVITSConfig.v2()).eval()
    light = copy.deepcopy(exact)
    assert prepare_sovits(light, "bf16", "openvino") == "openvino"
    codes, phones = torch.randint(0, 1024, (1, 1, 40)), torch.randint(0, 700, (1, 12))
    ref = [torch.rand(1, exact.config.spec_channels, 60)]
    with torch.inference_mode():
        a = exact.decode(codes, phones, ref, noise_scale=0.0)
        b = light.decode(codes, phones, ref, noise_scale=0.0)
    assert a.shape == b.shape
    assert QUALITY_BOUNDS.sovits_snr_min_db <= snr_db(a, b) < float("inf")


def test_the_plan_names_openvino_and_falls_back_without_it(tiny_gpt, tiny_s2_pth, monkeypatch):
    from studio.models.sovits.checkpoint import load_sovits

    plan = plan_for("int8", fast_bf16=True, openvino_decoder=True)
    assert plan.sovits_runtime == "openvino" and "bf16 on OpenVINO" in plan.describe()
    assert plan_for("fp32", fast_bf16=True, openvino_decoder=True).sovits_runtime == "pytorch"  # the exact path
    sovits = load_sovits(tiny_s2_pth).model.eval()
    held, _ = precision_choice.apply_plan(copy.deepcopy(tiny_gpt), sovits, plan)
    assert held.sovits_runtime == "openvino" and sovits.dec.__dict__["fast"].openvino is not None
    monkeypatch.setattr(openvino_decoder, "available", lambda: False)
    sovits = load_sovits(tiny_s2_pth).model.eval()
    held, _ = precision_choice.apply_plan(copy.deepcopy(tiny_gpt), sovits, plan)
    assert held.sovits_runtime == "pytorch" and "OpenVINO unavailable" in held.reason
    assert sovits.dec.__dict__["fast"].openvino is None
    with torch.inference_mode():  # and it decodes
        assert sovits.dec(torch.randn(1, sovits.dec.conv_pre.in_channels, 9), None).shape[-1] > 0


def test_openvino_decodes_only_when_asked(monkeypatch):
    """Its compiled windows hold ~300 MB more than PyTorch's path: a choice, never the default."""
    monkeypatch.delenv(precision_choice.DECODER_ENV, raising=False)
    assert not precision_choice._use_openvino()
    assert precision_choice.resolve_plan("int8").sovits_runtime == "pytorch"
    monkeypatch.setenv(precision_choice.DECODER_ENV, "openvino")
    plan = precision_choice.resolve_plan("int8")
    assert plan.sovits_runtime == "openvino" and "OpenVINO" in plan.describe()
    assert precision_choice.resolve_plan("fp32").sovits_runtime == "pytorch"


def test_the_openvino_decoder_never_starts_openvinos_telemetry(tiny_dec, monkeypatch):
    """OpenVINO's wheel brings a usage-statistics package (used by its model converter, which we never call):
    building, compiling and running our windows must never create its sender."""
    telemetry = pytest.importorskip("openvino_telemetry")

    def refuse(*_args, **_kwargs):
        raise AssertionError("OpenVINO telemetry was started")

    monkeypatch.setattr(telemetry.Telemetry, "__init__", refuse)
    fast = FastGenerator(tiny_dec, torch.float32)
    assert openvino_decoder.attach(fast, bf16=False)
    g = torch.zeros(1, fast.cond.weight.shape[1], 1) if fast.cond is not None else None
    with torch.inference_mode():
        assert fast(torch.randn(1, fast.conv_pre.weight.shape[1], 40), g).shape[-1] == 40 * fast.hop
