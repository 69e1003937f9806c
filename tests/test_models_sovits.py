"""SoVITS (s2) synthesizer parity with upstream goldens (MANIFEST §2.3) and architecture invariants."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import spec_dir
from golden_utils import assert_close, load_json, load_npz

from studio.models.sovits.checkpoint import load_sovits
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer

SPEC_KEYS = spec_dir() / "state_dict_keys"


@pytest.fixture(scope="module")
def g(golden: Path) -> dict:
    return load_npz(str(golden / "golden_tensors.npz"))


@pytest.fixture(scope="module")
def runs(golden: Path) -> dict:
    return load_json(golden / "golden_runs.json")["s2"]


@pytest.fixture(scope="module")
def model(tiny_s2_pth: Path) -> SoVITSSynthesizer:
    return load_sovits(tiny_s2_pth).model


def t(array) -> torch.Tensor:
    return torch.from_numpy(array)


def test_extract_latent_codes_exact(model, g):
    codes = model.extract_latent(t(g["s2_in_ssl"]))
    assert codes.shape == g["s2_out_codes_from_ssl"].shape
    assert codes.dtype == torch.int64
    assert (codes.numpy() == g["s2_out_codes_from_ssl"]).all(), "semantic codes differ from upstream"


def test_extract_latent_batch_matches_single(model, g):
    ssl = t(g["s2_in_ssl"])
    single = model.extract_latent(ssl)  # (Q, 1, T)
    batch = model.extract_latent(torch.cat([ssl, ssl.flip(-1)], 0))  # (Q, 2, T)
    assert batch.shape[:2] == (single.shape[0], 2)
    assert torch.equal(batch[:, :1], single)


def test_quantizer_decode(model, g):
    assert_close(model.quantizer.decode(t(g["s2_in_semantic"])), g["s2_out_quantized"], what="quantized")


def test_reference_style(model, g):
    with torch.no_grad():
        assert_close(model.reference_style(t(g["spec_out_linear"])), g["s2_out_ge"], what="ge")
        ge2 = model.reference_style(t(g["spec_out_second_ref_linear"]))
    assert_close(ge2, g["s2_out_ge_second_ref_only"], what="ge second ref")


def _prior(model, g, speed=1.0):
    with torch.no_grad():
        ge = model.reference_style(t(g["spec_out_linear"]))
        return model.prior(t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), ge, speed)


def test_prior_mean_and_log_scale(model, g):
    prior = _prior(model, g)
    assert_close(prior.m_p, g["s2_out_encp_m_p"], what="m_p")
    assert_close(prior.logs_p, g["s2_out_encp_logs_p"], what="logs_p")


def test_flow_reverse(model, g):
    prior = _prior(model, g)
    with torch.no_grad():
        z = model.flow(prior.m_p, prior.mask, g=prior.ge, reverse=True)
    assert_close(z, g["s2_out_flow_z"], what="flow z")


def test_decode_speed1(model, g, runs):
    wav = model.decode(t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), t(g["spec_out_linear"]), noise_scale=0.0)
    n_tokens = g["s2_in_semantic"].shape[-1]
    assert wav.shape[-1] == 2 * n_tokens * model.config.samples_per_frame
    assert_close(wav, g["s2_out_wav_speed1"], what="wav speed 1")


def test_decode_every_golden_speed(model, g, runs):
    speeds = runs["speeds"]
    assert speeds, "golden_runs.json lists no speeds"
    for i, speed in enumerate(speeds):
        prior = _prior(model, g, speed)
        assert_close(prior.m_p, g[f"s2_out_encp_m_p_speed_i{i}"], what=f"m_p at speed {speed}")
        wav = model.decode(
            t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), t(g["spec_out_linear"]), noise_scale=0.0, speed=speed
        )
        assert_close(wav, g[f"s2_out_wav_speed_i{i}"], what=f"wav at speed {speed}")


def test_decode_two_references_averages_style(model, g):
    refs = [t(g["spec_out_linear"]), t(g["spec_out_second_ref_linear"])]
    wav = model.decode(t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), refs, noise_scale=0.0)
    assert_close(wav, g["s2_out_wav_two_refs"], what="wav two refs")


def test_noise_is_seeded_and_used(model, g):
    args = (t(g["s2_in_semantic"]), t(g["s2_in_text_ids"]), t(g["spec_out_linear"]))
    a = model.decode(*args, noise_scale=0.5, generator=torch.Generator().manual_seed(3))
    b = model.decode(*args, noise_scale=0.5, generator=torch.Generator().manual_seed(3))
    clean = model.decode(*args, noise_scale=0.0)
    assert torch.equal(a, b)
    assert (a - clean).abs().max() > 1e-4


def _official_rows() -> list[dict]:
    path = SPEC_KEYS / "s2_official_v2_state_dict.tsv"
    if not path.is_file():
        pytest.skip(f"spec table not found: {path}")
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_official_v2_preset_matches_state_dict_table():
    rows = _official_rows()
    model = SoVITSSynthesizer(SoVITSConfig.v2())
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(r["key"], json.loads(r["shape"])) for r in rows]
    n_params = sum(p.numel() for p in model.parameters())
    buffers = sum(int(r["numel"]) for r in rows if "._codebook." in r["key"])
    assert n_params == sum(int(r["numel"]) for r in rows) - buffers
    without_posterior = SoVITSSynthesizer(SoVITSConfig.v2(), with_posterior_encoder=False)
    exported = [r["key"] for r in rows if r["in_exported_finetune_pth"] == "yes"]
    assert list(without_posterior.state_dict()) == exported


def test_v1_preset_differs_only_in_table_sizes():
    v1, v2 = SoVITSConfig.v1(), SoVITSConfig.v2()
    assert v1.n_symbols == 322 and v1.ref_enc_in_bins == v1.spec_channels
    m1 = SoVITSSynthesizer(v1, with_posterior_encoder=False).state_dict()
    m2 = SoVITSSynthesizer(v2, with_posterior_encoder=False).state_dict()
    assert list(m1) == list(m2)
    differing = {k for k in m1 if m1[k].shape != m2[k].shape}
    assert differing == {"enc_p.text_embedding.weight", "ref_enc.spectral.0.fc.weight"}


def test_from_hparams_reads_data_section():
    hp = {"data": {"filter_length": 1024, "hop_length": 320, "sampling_rate": 16000}, "train": {"segment_size": 6400}}
    cfg = SoVITSConfig.from_hparams(hp)
    assert (cfg.spec_channels, cfg.segment_size, cfg.sampling_rate) == (513, 20, 16000)
