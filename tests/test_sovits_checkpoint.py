"""Safe loading / exact export of official SoVITS .pth files (SPEC §9.4, MANIFEST §1.2)."""

from __future__ import annotations

import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from golden_utils import load_npz

from studio.errors import CheckpointError
from studio.models.safe_pickle import HParamsRecord, save_torch_zip_bytes
from studio.models.sovits.checkpoint import load_sovits, read_sovits_file, save_sovits_official
from studio.models.sovits.synthesizer import SoVITSSynthesizer


@pytest.fixture(scope="module")
def loaded(tiny_s2_pth: Path):
    return load_sovits(tiny_s2_pth)


def _data_pkl(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        return archive.read(name)


def _decode(model: SoVITSSynthesizer, golden: Path) -> torch.Tensor:
    g = load_npz(str(golden / "golden_tensors.npz"))
    return model.decode(
        torch.from_numpy(g["s2_in_semantic"]),
        torch.from_numpy(g["s2_in_text_ids"]),
        torch.from_numpy(g["spec_out_linear"]),
        noise_scale=0.0,
    )


def test_load_official_export(loaded, tiny_s2_pth):
    model, config, info, version = loaded
    raw = read_sovits_file(tiny_s2_pth)
    assert version == "v2"
    assert not info.has_posterior_encoder and model.enc_q is None
    assert str(info) == raw.info_text != ""
    assert all(v.dtype == torch.float16 for v in raw.weights.values())
    assert all(p.dtype == torch.float32 for p in model.state_dict().values())
    # the pickled utils.HParams became a plain nested dict
    assert isinstance(info.hparams["model"], dict) and isinstance(info.hparams["data"], dict)
    assert config.hidden_channels == raw.weights["enc_p.text_embedding.weight"].shape[1]
    assert config.mrte_hidden_channels == raw.weights["enc_p.mrte.c_pre.weight"].shape[0]
    assert config.spec_channels == info.hparams["data"]["filter_length"] // 2 + 1
    assert not model.training


def test_export_is_byte_identical_pickle_and_round_trips(loaded, tiny_s2_pth, tmp_path, golden):
    model, _, info, _ = loaded
    out = save_sovits_official(model, info.hparams, tmp_path / "voice_e1_s10.pth", info.info_text)
    assert out.read_bytes()[:2] == b"PK"
    assert _data_pkl(out) == _data_pkl(tiny_s2_pth), "export differs from the WebUI format"
    assert b"utils\nHParams\n" in _data_pkl(out)
    again = load_sovits(out)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert torch.equal(_decode(model, golden), _decode(again.model, golden))
    assert [p.name for p in tmp_path.iterdir()] == [out.name], "temporary files left behind"


def test_full_generator_with_posterior_encoder(loaded, tmp_path):
    model, config, info, _ = loaded
    full = SoVITSSynthesizer(config, with_posterior_encoder=True)
    full.load_state_dict(model.state_dict(), strict=False)
    weights = {k: v.half() for k, v in full.state_dict().items()}
    path = tmp_path / "s2G_full.pth"
    path.write_bytes(save_torch_zip_bytes({"weight": weights, "config": HParamsRecord.from_dict(info.hparams)}))
    again = load_sovits(path)
    assert again.info.has_posterior_encoder and again.model.enc_q is not None
    assert torch.equal(again.model.enc_q.pre.weight, weights["enc_q.pre.weight"].float())


def test_v1_model_detected_from_weights(loaded, tmp_path):
    _, config, info, _ = loaded
    v1 = replace(config, version="v1", n_symbols=322, ref_enc_in_bins=config.spec_channels)
    path = save_sovits_official(
        SoVITSSynthesizer(v1, with_posterior_encoder=False), info.hparams, tmp_path / "a.pth", "x"
    )
    model, cfg, _, version = load_sovits(path)
    assert version == "v1"
    assert (cfg.n_symbols, cfg.ref_enc_in_bins) == (322, cfg.spec_channels)
    assert model.enc_p.text_embedding.num_embeddings == 322


def _with_header(src: Path, dst: Path, header: bytes) -> Path:
    dst.write_bytes(header + src.read_bytes()[2:])
    return dst


def test_version_tag_header_is_restored(tiny_s2_pth, tmp_path):
    path = _with_header(tiny_s2_pth, tmp_path / "tagged.pth", b"01")
    assert load_sovits(path).version == "v2"


@pytest.mark.parametrize("tag, name", [(b"02", "v3"), (b"03", "v3"), (b"04", "v4")])
def test_unsupported_versions_are_refused(tiny_s2_pth, tmp_path, tag, name):
    path = _with_header(tiny_s2_pth, tmp_path / "other.pth", tag)
    with pytest.raises(CheckpointError, match=f"{name}.*not supported yet") as err:
        load_sovits(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("tag, name", [(b"05", "v2Pro"), (b"06", "v2ProPlus")])
def test_v2pro_header_on_v2_weights_is_called_mislabelled(tiny_s2_pth, tmp_path, tag, name):
    path = _with_header(tiny_s2_pth, tmp_path / "relabelled.pth", tag)
    with pytest.raises(CheckpointError, match=f"header says {name}.*no speaker-verification weights") as err:
        load_sovits(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found") as err:
        load_sovits(tmp_path / "nope.pth")
    assert "nope.pth" in str(err.value)


def test_truncated_file(tiny_s2_pth, tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(tiny_s2_pth.read_bytes()[: tiny_s2_pth.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_sovits(path)
    assert "cut.pth" in str(err.value)


def test_gpt_checkpoint_passed_by_mistake(tiny_s1_ckpt):
    with pytest.raises(CheckpointError, match="GPT"):
        load_sovits(tiny_s1_ckpt)


def test_wrong_shapes_are_named(loaded, tmp_path):
    model, _, info, _ = loaded
    weights = {k: v.half() for k, v in model.state_dict().items()}
    weights["flow.flows.0.post.weight"] = weights["flow.flows.0.post.weight"][:1]
    path = tmp_path / "bad.pth"
    path.write_bytes(save_torch_zip_bytes({"weight": weights, "config": HParamsRecord.from_dict(info.hparams)}))
    with pytest.raises(CheckpointError, match="flow.flows.0.post.weight") as err:
        load_sovits(path)
    assert "bad.pth" in str(err.value)


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [_RunsShell, _CallsEval])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"enc_p.text_embedding.weight": torch.zeros(2)}, "config": payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused") as err:
        load_sovits(path)
    assert "evil.pth" in str(err.value)
    assert not marker.exists(), "the pickle was executed"
