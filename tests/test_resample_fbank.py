"""The SV front end against the v2Pro goldens: windowed-sinc resampling and Kaldi fbanks (MANIFEST §4.1, §6).

Every stage starts from its own golden input, so one stage's error cannot hide behind another's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from golden_utils import assert_close
from golden_v2pro_utils import TOL_EXACT, TOL_RESAMPLE_22K, load_npz, runs, tensor_index

from studio.audio.fbank import fbank_frames, kaldi_fbank, min_fbank_samples
from studio.audio.resample import resampled_length, sinc_resample
from studio.audio.spectrogram import linear_spectrogram
from studio.inference.reference import peak_normalised, reference_wav32k

# (32 kHz input, 16 kHz output, fbank) of the three clips of the reference/training chains
CHAINS = [
    ("ref_dbg_wav32k", "sv_in_wav16k", "sv_out_fbank"),
    ("ref2_dbg_wav32k_normalised", "sv2_in_wav16k", "sv2_out_fbank"),
    ("svtrain_in_wav32k", "svtrain_dbg_wav16k", "svtrain_out_fbank"),
]


@pytest.mark.parametrize(("wav32k", "wav16k", "_fbank"), CHAINS, ids=[c[1] for c in CHAINS])
def test_32k_to_16k_resampling_matches_golden(golden_v2pro, wav32k, wav16k, _fbank):
    tensors = load_npz()
    ours = sinc_resample(torch.from_numpy(tensors[wav32k]), 32000, 16000)
    assert tuple(ours.shape) == tensor_index()[wav16k][0]
    assert_close(ours, tensors[wav16k], TOL_EXACT, what=wav16k)


def test_reference_resampled_to_32k_matches_golden(golden_v2pro):
    """Stereo 22.05 kHz decode → channel mean → 32 kHz → peak rule (a non-integer rate ratio)."""
    tensors = load_npz()
    rate = runs()["reference_audio"]["sample_rate"]
    ours = peak_normalised(reference_wav32k(tensors["ref_in_wav"], rate))
    assert_close(ours, tensors["ref_dbg_wav32k"], TOL_RESAMPLE_22K, what="ref_dbg_wav32k")


def test_peak_rule_on_the_loud_second_reference(golden_v2pro):
    tensors = load_npz()
    raw = torch.from_numpy(tensors["ref2_in_wav32k"])
    assert float(raw.abs().max()) > 1.0, "the second reference is meant to exercise the peak rule"
    assert reference_wav32k(raw, 32000).shape == raw.shape  # already 32 kHz: nothing resampled
    assert_close(peak_normalised(raw), tensors["ref2_dbg_wav32k_normalised"], TOL_EXACT, what="ref2 normalised")


@pytest.mark.parametrize(
    ("wav32k", "spec"), [("ref_dbg_wav32k", "ref_out_spec"), ("ref2_dbg_wav32k_normalised", "ref2_out_spec")]
)
def test_reference_spectrogram_from_the_normalised_32k_audio(golden_v2pro, wav32k, spec):
    """SoVITS ``refer`` = spectrogram_torch(audio, 2048, 32000, 640, 2048, center=False) of the normalised audio."""
    tensors = load_npz()
    ours = linear_spectrogram(torch.from_numpy(tensors[wav32k]), n_fft=2048, hop=640, win=2048)
    assert_close(ours, tensors[spec], TOL_EXACT, what=spec)


@pytest.mark.parametrize(("_wav32k", "wav16k", "fbank"), CHAINS, ids=[c[2] for c in CHAINS])
def test_fbank_matches_golden(golden_v2pro, _wav32k, wav16k, fbank):
    tensors = load_npz()
    wav = torch.from_numpy(tensors[wav16k])  # (1, N16)
    ours = kaldi_fbank(wav, sample_rate=16000, num_mel_bins=tensor_index()[fbank][0][-1])
    assert ours.shape[0] == fbank_frames(wav.shape[-1])
    assert_close(ours.unsqueeze(0), tensors[fbank], TOL_EXACT, what=fbank)


def test_resampling_keeps_a_band_limited_tone():
    """Independent of torchaudio: a 1 kHz tone resampled 22.05 → 32 kHz is the same tone sampled at 32 kHz."""
    n = 4410
    x = torch.sin(2 * math.pi * 1000 * torch.arange(n, dtype=torch.float64) / 22050)
    y = sinc_resample(x, 22050, 32000)
    assert y.shape[-1] == math.ceil(n * 32000 / 22050) == resampled_length(n, 22050, 32000)
    expected = torch.sin(2 * math.pi * 1000 * torch.arange(y.shape[-1], dtype=torch.float64) / 32000)
    inner = slice(200, y.shape[-1] - 200)  # away from the zero-padded edges
    assert torch.max(torch.abs(y[inner] - expected[inner])) < 2e-3


def test_resampling_removes_what_the_new_rate_cannot_hold():
    """A 7 kHz tone at 32 kHz has no place at 8 kHz (Nyquist 4 kHz): it must not alias into the output."""
    x = torch.sin(2 * math.pi * 7000 * torch.arange(32000) / 32000)
    y = sinc_resample(x, 32000, 8000)
    assert y.shape[-1] == 8000
    assert float(y[100:-100].abs().max()) < 0.02


def test_resampling_works_on_any_leading_shape_and_dtype():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 1001, generator=g)
    y = sinc_resample(x, 48000, 16000)
    assert y.shape == (2, 3, resampled_length(1001, 48000, 16000))
    assert torch.allclose(y[1, 2], sinc_resample(x[1, 2], 48000, 16000), atol=1e-6)
    y64 = sinc_resample(x.double(), 48000, 16000)
    assert y64.dtype == torch.float64 and torch.allclose(y64.float(), y, atol=1e-5)
    assert sinc_resample(x, 16000, 16000) is x
    with pytest.raises(TypeError):
        sinc_resample(torch.zeros(10, dtype=torch.int16), 16000, 8000)


def test_fbank_of_a_clip_shorter_than_one_frame_is_refused():
    n = min_fbank_samples(16000)
    assert n == 400 and fbank_frames(n - 1) == 0 and fbank_frames(n) == 1
    assert kaldi_fbank(torch.full((1, n), 0.1)).shape == (1, 80)
    with pytest.raises(ValueError, match="shorter than one"):
        kaldi_fbank(torch.zeros(1, n - 1))


def test_fbank_follows_the_energy_of_a_tone():
    """A 1 kHz tone puts its energy in the mel bins around 1 kHz, and is 20·log10 louder when 10× louder."""
    t = torch.arange(16000) / 16000
    quiet = kaldi_fbank(0.01 * torch.sin(2 * math.pi * 1000 * t).unsqueeze(0))
    loud = kaldi_fbank(0.1 * torch.sin(2 * math.pi * 1000 * t).unsqueeze(0))
    peak_bin = int(quiet.mean(0).argmax())
    mel = np.array([1127 * math.log(1 + f / 700) for f in (20, 1000, 8000)])
    expected_bin = (mel[1] - mel[0]) / ((mel[2] - mel[0]) / 81) - 1
    assert abs(peak_bin - expected_bin) <= 1.5
    assert torch.allclose(loud[:, peak_bin] - quiet[:, peak_bin], torch.tensor(math.log(100.0)), atol=1e-3)
