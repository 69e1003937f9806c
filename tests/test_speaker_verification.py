"""The v2Pro speaker-verification model (ERes2NetV2) and the reference chain, against upstream's goldens.

The reduced golden checkpoint has the official key list with smaller channel counts (MANIFEST §2);
``sv_state_dict.tsv`` gives both shapes. Forward passes are slow (a 1024→2048 3×3 conv), so the
network runs only four times here: once over the reference fbank (all stage means and the
embedding) and once per end-to-end chain.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from golden_utils import assert_close
from golden_v2pro_utils import (
    TOL_EMBEDDING,
    TOL_EXACT,
    TOL_RESAMPLE_22K,
    TOL_STAGE,
    decompressed,
    load_npz,
    runs,
    tensor_index,
)

from studio.errors import CheckpointError, MissingPretrainedError, ReferenceAudioError
from studio.inference.reference import load_reference, reference_sv_embedding, timbre_spectrogram
from studio.models.eres2net import STAGES, ERes2NetV2, ERes2NetV2Config
from studio.models.speaker_verification import load_speaker_verifier, sv_embedding_for_training

SV_CKPT = "tiny_sv_eres2netv2.ckpt"


@pytest.fixture(scope="session")
def sv_ckpt(golden_v2pro, tmp_path_factory) -> Path:
    return decompressed(SV_CKPT, tmp_path_factory.mktemp("sv"))


@pytest.fixture(scope="module")
def verifier(sv_ckpt):
    return load_speaker_verifier(sv_ckpt)


@pytest.fixture(scope="module")
def reference_stages(verifier):
    """One pass over the golden reference fbank: every stage output (B, C, F, T')."""
    fbank = torch.from_numpy(load_npz()["sv_out_fbank"])
    with torch.inference_mode():
        return verifier.model.stage_outputs(fbank)


def _state_table(golden: Path) -> list[dict[str, str]]:
    lines = (golden / "sv_state_dict.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line.strip()]


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.strip("[]").split(",") if s.strip())


# ------------------------------------------------------------------------------------- architecture


def test_official_size_has_upstreams_keys_and_full_shapes(golden_v2pro):
    table = _state_table(golden_v2pro)
    with torch.device("meta"):
        model = ERes2NetV2(ERes2NetV2Config.official())
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(row["key"], _shape(row["full_shape"])) for row in table]
    assert ERes2NetV2Config.from_state_dict(model.state_dict()) == ERes2NetV2Config.official()


def test_golden_checkpoint_loads_with_sizes_inferred_from_its_weights(golden_v2pro, verifier):
    table = _state_table(golden_v2pro)
    ours = [(k, tuple(v.shape)) for k, v in verifier.model.state_dict().items()]
    assert ours == [(row["key"], _shape(row["tiny_shape"])) for row in table]
    emb_width = tensor_index()["sv_out_emb"][0][-1]
    assert verifier.embedding_dim == emb_width == ERes2NetV2Config.official().embedding_dim
    assert not verifier.model.training


# ------------------------------------------------------------------------------------- numerics


def test_every_stage_golden_is_checked(golden_v2pro):
    staged = {k[len("sv_dbg_") : -len("_tmean")] for k in tensor_index() if k.startswith("sv_dbg_")}
    assert staged == set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_time_means_match_golden(reference_stages, stage):
    ours = reference_stages[stage].mean(dim=-1)  # (B, C, F)
    assert_close(ours, load_npz()[f"sv_dbg_{stage}_tmean"], TOL_STAGE, what=f"sv_dbg_{stage}_tmean")


def test_network_embedding_from_golden_fbank(reference_stages):
    """forward3: fused map flattened channel-major (c·F' + f), averaged over time."""
    ours = reference_stages["fuse34"].flatten(1, 2).mean(dim=-1)
    assert_close(ours, load_npz()["sv_out_emb"], TOL_EMBEDDING, what="sv_out_emb (from sv_out_fbank)")


def test_reference_file_end_to_end(golden_v2pro, verifier):
    """sv_ref.wav decoded by our one decode path → 32 kHz timbre audio → spectrogram and SV embedding."""
    tensors = load_npz()
    ref = load_reference(golden_v2pro / runs()["reference_audio"]["file"], check_length=False)
    spec = timbre_spectrogram(ref.wav32k)  # its input carries the resampler's 1e-4 tolerance
    assert_close(spec, tensors["ref_out_spec"], TOL_RESAMPLE_22K, what="ref_out_spec (file)")
    emb = reference_sv_embedding(verifier, ref.wav32k)
    assert_close(emb, tensors["sv_out_emb"], TOL_EMBEDDING, what="sv_out_emb (file)")


def test_loud_second_reference_end_to_end(golden_v2pro, verifier):
    tensors = load_npz()
    emb = reference_sv_embedding(verifier, tensors["ref2_in_wav32k"])
    assert_close(emb, tensors["sv2_out_emb"], TOL_EMBEDDING, what="sv2_out_emb")
    spec = timbre_spectrogram(tensors["ref2_in_wav32k"])
    assert_close(spec, tensors["ref2_out_spec"], TOL_EXACT, what="ref2_out_spec")


def test_training_clip_embedding_from_the_int16_wav(golden_v2pro, verifier):
    """The training extractor holds the stored int16 wav; its feature is what 7-sv_cn/<wav>.pt holds."""
    wav = load_npz()["svtrain_in_wav32k"][0]
    pcm = np.round(wav * 32768.0).astype(np.int16)
    assert np.array_equal(pcm.astype(np.float32) / 32768.0, wav), "the golden input is int16-quantised"
    emb = sv_embedding_for_training(verifier, pcm)
    assert_close(emb, load_npz()["svtrain_out_emb"], TOL_EMBEDDING, what="svtrain_out_emb")


def test_reference_shorter_than_one_fbank_frame_is_refused_in_words(verifier):
    too_short = np.full(2 * verifier.min_samples - 2, 0.3, dtype=np.float32)  # 32 kHz → one sample short at 16 kHz
    with pytest.raises(ReferenceAudioError) as info:
        reference_sv_embedding(verifier, too_short, name="extra reference clip")
    message = str(info.value)
    assert "extra reference clip" in message and "too short" in message and "25 ms" in message
    just_enough = np.full(2 * verifier.min_samples, 0.3, dtype=np.float32)
    assert reference_sv_embedding(verifier, just_enough).shape == (1, verifier.embedding_dim)


# ------------------------------------------------------------------------------------- loading


def test_fp32_checkpoint_loads_to_the_same_weights(verifier, sv_ckpt, tmp_path):
    state = torch.load(sv_ckpt, map_location="cpu", weights_only=True)
    assert any(t.dtype == torch.float16 for t in state.values()), "the golden file is stored fp16"
    fp32 = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / "sv_fp32.ckpt"
    torch.save(fp32, path)
    other = load_speaker_verifier(path)
    assert other.config == verifier.config
    for (key, ours), theirs in zip(other.model.state_dict().items(), verifier.model.state_dict().values(), strict=True):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), key


def test_missing_file_names_the_download_command(tmp_path):
    path = tmp_path / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"
    with pytest.raises(MissingPretrainedError) as info:
        load_speaker_verifier(path)
    assert str(path) in str(info.value) and "studio download --version v2ProPlus" in str(info.value)


def test_truncated_checkpoint_is_a_checkpoint_error(sv_ckpt, tmp_path):
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(sv_ckpt.read_bytes()[: sv_ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        load_speaker_verifier(path)
    assert "truncated.ckpt" in str(info.value) and "download" in str(info.value)


def test_files_that_are_not_an_sv_checkpoint_are_refused(golden_v2pro, tmp_path):
    wav = golden_v2pro / runs()["reference_audio"]["file"]
    with pytest.raises(CheckpointError, match="not a readable PyTorch weight file"):
        load_speaker_verifier(wav)
    other_model = tmp_path / "linear.ckpt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other_model)
    with pytest.raises(CheckpointError, match="not a speaker-verification"):
        load_speaker_verifier(other_model)
    wrapped = tmp_path / "wrapped.ckpt"
    torch.save({"weight": torch.nn.Linear(4, 2).state_dict(), "info": "x"}, wrapped)
    with pytest.raises(CheckpointError, match="not a speaker-verification"):
        load_speaker_verifier(wrapped)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_carrying_code_is_refused_before_it_runs(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    buffer = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(1), "x": _Payload()}, buffer, pickle_protocol=2)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="refused"):
        load_speaker_verifier(path)
    assert "this must never run" not in capsys.readouterr().out
