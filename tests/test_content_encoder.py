"""HuBERT content encoder and waveform preparation against golden_hf.npz (MANIFEST §4.1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from golden_utils import assert_close, load_json, load_npz
from memory_utils import resident_kib

from studio.errors import AudioError, CheckpointError, MissingPretrainedError, ReferenceAudioError
from studio.models.content_encoder import (
    ContentEncoder,
    check_reference_length,
    reference_ssl_input,
    training_waveforms,
)


@pytest.fixture(scope="module")
def hf(golden):
    return load_npz(str(golden / "golden_hf.npz"))


@pytest.fixture(scope="module")
def meta(golden):
    return load_json(golden / "golden_hf_meta.json")


@pytest.fixture(scope="module")
def encoder(golden):
    return ContentEncoder(golden / "hf_tiny_hubert")


def _ssl_frames(n_samples: int) -> int:
    return (n_samples - 400) // 320 + 1


# ------------------------------------------------------------------ reference (inference) path


def test_reference_ssl_matches_golden(encoder, hf):
    wav16k = hf["hubert_in_wav16k_librosa"]
    check_reference_length(len(wav16k))  # the golden clip is a valid reference
    x = reference_ssl_input(wav16k)  # (1, N + pad)
    assert x.shape[0] == 1 and x.shape[1] > len(wav16k)
    assert torch.count_nonzero(x[0, len(wav16k) :]) == 0
    ssl = encoder.encode(x)
    assert ssl.shape == (1, encoder.dim, _ssl_frames(x.shape[1]))
    assert_close(ssl, hf["hubert_out_ssl_content"], what="hubert_out_ssl_content")


def test_conv_features_match_golden(encoder, hf):
    x = reference_ssl_input(hf["hubert_in_wav16k_librosa"])
    assert_close(encoder.conv_features(x), hf["hubert_dbg_conv_features"], what="hubert_dbg_conv_features")


def test_encode_accepts_numpy_and_one_dimensional_input(encoder, hf):
    wav = hf["hubert_train_dbg_wav16k_scaled"]
    assert torch.equal(encoder.encode(wav), encoder.encode(torch.from_numpy(wav).unsqueeze(0)))


def test_reference_length_bounds():
    check_reference_length(48000)
    check_reference_length(160000)
    for n in (47999, 160001, 0):
        with pytest.raises(ReferenceAudioError, match=r"\d+\.\d\d s.*between 3 and 10 seconds"):
            check_reference_length(n)


def test_too_short_input_is_an_audio_error(encoder):
    with pytest.raises(AudioError, match="at least 400"):
        encoder.encode(torch.zeros(1, 399))


# ------------------------------------------------------------------ training path


def test_training_waveforms_match_golden(hf, meta):
    prepared = training_waveforms(hf["hubert_train_in_wav32k"])
    assert prepared.peak == pytest.approx(meta["hubert_train_peak"], rel=1e-6)
    gold16 = hf["hubert_train_out_wav32k_int16"]
    assert prepared.wav32k_int16.dtype == np.int16 and prepared.wav32k_int16.shape == gold16.shape
    assert np.abs(prepared.wav32k_int16.astype(np.int32) - gold16.astype(np.int32)).max() <= 1
    assert prepared.wav16k_scaled.dtype == np.float32
    assert_close(prepared.wav16k_scaled, hf["hubert_train_dbg_wav16k_scaled"], what="hubert_train_dbg_wav16k_scaled")


def test_training_ssl_matches_golden(encoder, hf):
    # HuBERT alone, from the golden 16 kHz input (the resampler is checked above)
    ssl = encoder.encode(torch.from_numpy(hf["hubert_train_dbg_wav16k_scaled"]).unsqueeze(0))
    assert_close(ssl, hf["hubert_train_out_ssl"], what="hubert_train_out_ssl")
    # and the whole training chain from the 32 kHz clip
    prepared = training_waveforms(hf["hubert_train_in_wav32k"])
    ssl = encoder.encode(torch.from_numpy(prepared.wav16k_scaled).unsqueeze(0))
    assert_close(ssl, hf["hubert_train_out_ssl"], what="hubert_train_out_ssl (from wav32k)")


def test_training_waveforms_refuse_bad_clips():
    t = np.linspace(0, 1, 32000, dtype=np.float32)
    with pytest.raises(AudioError, match="peaks at 2.50"):
        training_waveforms(2.5 * np.sin(2 * np.pi * 50 * t))
    with pytest.raises(AudioError, match="silent"):
        training_waveforms(np.zeros(32000, dtype=np.float32))
    with pytest.raises(AudioError, match="NaN"):
        training_waveforms(np.full(32000, np.nan, dtype=np.float32))


def test_training_int16_is_clipped_not_wrapped():
    t = np.linspace(0, 1, 32000, dtype=np.float32)
    loud = 1.8 * np.sin(2 * np.pi * 50 * t)
    wav = training_waveforms(loud).wav32k_int16
    assert wav.max() == 32767 and wav.min() == -32768
    assert np.all(np.sign(wav[np.abs(loud) > 0.5]) == np.sign(loud[np.abs(loud) > 0.5]))


# ------------------------------------------------------------------ chains through the SoVITS quantizer


def _load_sovits(request):
    from studio.models.sovits import load_sovits

    return load_sovits(request.getfixturevalue("tiny_s2_pth")).model  # decompressed only when needed


def test_prompt_semantic_chain(encoder, hf, request):
    sovits = _load_sovits(request)
    ssl = encoder.encode(reference_ssl_input(hf["hubert_in_wav16k_librosa"]))
    with torch.no_grad():
        codes = sovits.extract_latent(ssl)  # (n_q, B, T_sem)
    np.testing.assert_array_equal(codes[0, 0].cpu().numpy(), hf["hubert_chain_prompt_semantic"])


def test_training_semantic_chain(encoder, hf, request):
    sovits = _load_sovits(request)
    prepared = training_waveforms(hf["hubert_train_in_wav32k"])
    ssl = encoder.encode(torch.from_numpy(prepared.wav16k_scaled).unsqueeze(0))
    with torch.no_grad():
        codes = sovits.extract_latent(ssl)
    np.testing.assert_array_equal(codes.cpu().numpy(), hf["hubert_train_chain_semantic"])


# ------------------------------------------------------------------ loading errors


def _copy_config(golden, dst):
    dst.mkdir()
    shutil.copy(golden / "hf_tiny_hubert" / "config.json", dst / "config.json")
    return dst


def test_missing_folder_names_folder_and_files(tmp_path):
    folder = tmp_path / "chinese-hubert-base"
    with pytest.raises(MissingPretrainedError, match="chinese-hubert-base.*pytorch_model.bin"):
        ContentEncoder(folder)


def test_missing_weight_file(golden, tmp_path):
    folder = _copy_config(golden, tmp_path / "hubert")
    with pytest.raises(MissingPretrainedError, match=r"no weight file.*pytorch_model\.bin"):
        ContentEncoder(folder)


def test_truncated_weight_file_is_a_checkpoint_error(golden, tmp_path):
    folder = _copy_config(golden, tmp_path / "hubert")
    data = (golden / "hf_tiny_hubert" / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="hubert"):
        ContentEncoder(folder)


def test_checkpoint_without_a_real_weight_is_refused(golden, tmp_path):
    folder = _copy_config(golden, tmp_path / "hubert")
    state = torch.load(golden / "hf_tiny_hubert" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    dropped = next(k for k in state if k.endswith("attention.q_proj.weight"))
    del state[dropped]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing"):
        ContentEncoder(folder)


def test_legacy_weight_norm_names_are_applied(golden, encoder):
    state = torch.load(golden / "hf_tiny_hubert" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    g = next(v for k, v in state.items() if k.endswith("pos_conv_embed.conv.weight_g"))
    v = next(v for k, v in state.items() if k.endswith("pos_conv_embed.conv.weight_v"))
    expected = v * g / v.norm(dim=(0, 1), keepdim=True)
    assert torch.allclose(encoder.model.encoder.pos_conv_embed.conv.weight, expected, rtol=1e-5, atol=1e-7)


def test_checkpoint_without_the_positional_conv_is_refused(golden, tmp_path):
    """Neither weight_g/weight_v nor a plain weight for the positional convolution: refused by name, never run
    with a freshly initialised convolution."""
    folder = _copy_config(golden, tmp_path / "hubert")
    state = torch.load(golden / "hf_tiny_hubert" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if "pos_conv_embed.conv.weight" not in k}
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pos_conv_embed\.conv\.weight missing"):
        ContentEncoder(folder)


# ------------------------------------------------------------------ memory


def test_encoding_needs_no_transformers_import(golden, hf):
    """HuBERT is plain PyTorch: importing transformers' HuBERT code alone costs ~210 MB of memory."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from studio.models.content_encoder import ContentEncoder; "
        f"e = ContentEncoder({str(golden / 'hf_tiny_hubert')!r}); "
        "e.encode(np.zeros(16000, dtype=np.float32)); "
        "print(sorted(m for m in sys.modules if m.startswith('transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux")
def test_released_weights_leave_memory_and_come_back_unchanged(golden, hf, tmp_path):
    """The weights map the checkpoint file: once a reference is encoded their pages can leave resident memory
    (the conditioner does this after every new clip), and the next encoding reads them back — same features."""
    folder = shutil.copytree(golden / "hf_tiny_hubert", tmp_path / "hubert")  # mapped by this encoder alone
    encoder = ContentEncoder(folder)
    weights = folder / "pytorch_model.bin"
    x = reference_ssl_input(hf["hubert_in_wav16k_librosa"])
    first = encoder.encode(x)
    weights_kib = sum(p.numel() for p in encoder.model.parameters()) * 4 // 1024
    assert resident_kib(weights) > weights_kib // 2
    assert encoder.release_memory() > 0
    assert resident_kib(weights) < weights_kib // 8, "the encoder's file pages stayed resident"
    assert torch.equal(encoder.encode(x), first)
    # the reference path lets each block's pages go as soon as it has run: the pass never holds them all
    encoder.release_memory()
    peaks = []
    encoder._release_block = lambda block, inner=encoder._release_block: (inner(block), peaks.append(resident_kib(weights)))
    assert torch.equal(encoder.encode(x, release_weights=True), first)
    assert len(peaks) == 2 + 1 + encoder.model.sizes.num_hidden_layers  # conv stack, projection, pos conv, layers
    assert max(peaks) < weights_kib // 8 and resident_kib(weights) < weights_kib // 8
