"""SoVITS v2Pro / v2ProPlus: parity with upstream goldens (golden_v2pro MANIFEST §1, §4.2), official file
headers, version detection, export round trip and the official-size architecture (SPEC §9.4, §11).

Shapes, speeds, noise parameters and file facts come from ``golden_runs.json`` and the npz, never from here:
a twin set with other seeds, inputs and parameters must pass unchanged. SoVITS parts are fed the stored
``ref_out_spec`` / ``sv_out_emb`` so that a speaker-verification error cannot hide a SoVITS one (MANIFEST §6).
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import conftest
import pytest
import torch
from golden_utils import assert_close
from golden_v2pro_utils import TOL_EXACT, decompressed, load_npz, runs, tensor_index

from studio.errors import CheckpointError, ReferenceAudioError
from studio.models.safe_pickle import HParamsRecord, save_torch_zip_bytes
from studio.models.sovits.checkpoint import (
    detect_sovits_version,
    load_sovits,
    read_sovits_file,
    save_sovits_official,
)
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.text2semantic_checkpoint import load_text2semantic

VERSIONS = ("v2Pro", "v2ProPlus")
SPEC_DIR = conftest.spec_dir() if hasattr(conftest, "spec_dir") else conftest.SHARED / "spec"
SPEC_KEYS = SPEC_DIR / "state_dict_keys"
# SPEC §11: SoVITS generator parameters (with enc_q, without enc_q)
SPEC_PARAMETER_COUNTS = {"v2Pro": (79_428_096, 65_788_032), "v2ProPlus": (98_338_432, 84_698_368)}
REFUSAL = r"v3 \(or v4\) voice; SoVITS Studio runs v1, v2, v2Pro and v2ProPlus; v3/v4 are not supported yet"


def t(array) -> torch.Tensor:
    return torch.from_numpy(array)


def _facts(version: str) -> dict:
    return runs()["models"][f"s2_{version}"]


def _prefix(version: str) -> str:
    return runs()["s2"]["prefixes"][version]


@pytest.fixture(scope="module", params=VERSIONS)
def version(request) -> str:
    if request.param not in runs()["s2"]["prefixes"]:
        pytest.fail(f"golden_runs.json s2.prefixes lacks {request.param}")
    return request.param


@pytest.fixture(scope="module")
def tiny_path(version: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return decompressed(_facts(version)["file"], tmp_path_factory.mktemp("v2pro"))


@pytest.fixture(scope="module")
def loaded(tiny_path: Path):
    return load_sovits(tiny_path)


def _gold(version: str, name: str):
    return load_npz()[f"{_prefix(version)}_{name}"]


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = load_npz()
    return t(g["s2_in_semantic"]), t(g["s2_in_text_ids"])


def _refs(two: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = load_npz()
    specs, embs = [t(g["ref_out_spec"])], [t(g["sv_out_emb"])]
    if two:
        specs.append(t(g["ref2_out_spec"]))
        embs.append(t(g["sv2_out_emb"]))
    return specs, embs


def _close(ours, version: str, name: str) -> None:
    assert_close(ours, _gold(version, name), TOL_EXACT, what=f"{version} {name}")


# ----------------------------------------------------------------------------------------------- the tiny files


def test_tiny_file_header_zip_layout_and_detection(version, tiny_path, tmp_path):
    facts = _facts(version)
    data = tiny_path.read_bytes()
    assert data[:2] == facts["first_two_bytes"].encode() and data[:2].hex() == facts["first_two_bytes_hex"]
    assert data[2:4].hex() == facts["bytes_2_to_4_hex"]
    found = detect_sovits_version(tiny_path)
    assert (found.version, found.source, found.supported) == (version, "header", True)
    restored = tmp_path / "plain_zip.pth"
    restored.write_bytes(b"PK" + data[2:])
    with zipfile.ZipFile(restored) as archive:
        names = archive.namelist()
    assert len(names) == facts["zip_n_records"]
    assert {n.split("/")[0] for n in names} == {facts["zip_archive_prefix"]}
    # the same weights behind a plain zip header (as a pretrained file may be) are recognised by their keys
    by_weights = detect_sovits_version(restored)
    assert (by_weights.version, by_weights.source) == (version, "weights")
    assert load_sovits(restored).version == version


def test_tiny_file_loads_with_only_the_posterior_encoder_missing(version, tiny_path, loaded):
    facts = _facts(version)
    model, config, info, found_version = loaded
    raw = read_sovits_file(tiny_path)
    assert found_version == version and config.version == version and config.uses_speaker_verification
    assert len(raw.weights) == facts["load"]["n_weight_tensors"]
    assert sum(v.numel() for v in raw.weights.values()) == facts["load"]["n_values"]
    assert all(v.dtype == torch.float16 for v in raw.weights.values())
    assert info.info_text == facts["info"] and not info.has_posterior_encoder and model.enc_q is None
    full = set(SoVITSSynthesizer(config, with_posterior_encoder=True).state_dict())
    missing = full - set(raw.weights)
    assert missing and all(k.startswith("enc_q.") for k in missing)
    stored = [(k, list(s)) for k, s in facts["state_dict"]]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == stored
    stored_model = facts["config"]["model"]
    assert config.gin_channels == stored_model["gin_channels"]
    assert config.upsample_kernel_sizes == tuple(stored_model["upsample_kernel_sizes"])
    assert info.hparams == facts["config"]


# ----------------------------------------------------------------------------------------------- golden numerics


def test_codes_and_quantizer(version, loaded):
    model = loaded.model
    codes = model.extract_latent(t(load_npz()["s2_in_ssl"]))
    gold = _gold(version, "out_codes_from_ssl")
    assert codes.shape == gold.shape and (codes.numpy() == gold).all(), "semantic codes differ from upstream"
    with torch.no_grad():
        _close(model.quantizer.decode(_inputs()[0]), version, "out_quantized")


def test_speaker_vector_pieces(version, loaded):
    model = loaded.model
    (spec,), (emb,) = _refs()
    with torch.no_grad():
        _close(model.style_from_spectrogram(spec), version, "out_ge_refenc")
        _close(model.sv_emb(emb), version, "out_sv_proj")
        ge = model.reference_style([spec], [emb])
        _close(ge, version, "out_ge")
        _close(model.prior_style(ge), version, "out_ge512")


def test_prior_flow_and_waveform_at_speed_1(version, loaded):
    model = loaded.model
    codes, text = _inputs()
    specs, embs = _refs()
    with torch.no_grad():
        prior = model.prior(codes, text, model.reference_style(specs, embs))
        _close(prior.m_p, version, "out_encp_m_p")
        _close(prior.logs_p, version, "out_encp_logs_p")
        _close(model.flow(prior.m_p, prior.mask, g=prior.ge, reverse=True), version, "out_flow_z")
    wav = model.decode(codes, text, specs, noise_scale=0.0, speed=1, sv_emb=embs)
    assert wav.shape[-1] == 2 * codes.shape[-1] * model.config.samples_per_frame
    _close(wav, version, "out_wav_speed1")


def test_every_golden_speed(version, loaded):
    model = loaded.model
    codes, text = _inputs()
    specs, embs = _refs()
    speeds = runs()["s2"]["speeds"]
    assert speeds, "golden_runs.json lists no speeds"
    for i, speed in enumerate(speeds):
        with torch.no_grad():
            prior = model.prior(codes, text, model.reference_style(specs, embs), speed)
        _close(prior.m_p, version, f"out_encp_m_p_speed_i{i}")
        _close(
            model.decode(codes, text, specs, noise_scale=0.0, speed=speed, sv_emb=embs), version, f"out_wav_speed_i{i}"
        )


def test_noise_run_with_the_recorded_noise(version, loaded):
    model = loaded.model
    run = runs()["s2"]["noise_run"]
    codes, text = _inputs()
    specs, embs = _refs()
    noise = t(_gold(version, "noise_dbg_randn"))
    with torch.no_grad():
        prior = model.prior(codes, text, model.reference_style(specs, embs), run["speed"])
        z_p = model.sample_prior(prior, run["noise_scale"], noise=noise)
        _close(model.flow(z_p, prior.mask, g=prior.ge, reverse=True), version, "noise_out_flow_z")
    wav = model.decode(codes, text, specs, run["noise_scale"], run["speed"], sv_emb=embs, noise=noise)
    _close(wav, version, "noise_out_wav")


def test_two_references_average_after_the_prelu(version, loaded):
    model = loaded.model
    codes, text = _inputs()
    specs, embs = _refs(two=True)
    with torch.no_grad():
        _close(model.reference_style(specs[1:], embs[1:]), version, "out_ge_ref2_only")
        ge = model.reference_style(specs, embs)
        _close(ge, version, "out_ge_two_refs")
        _close(model.prior_style(ge), version, "out_ge512_two_refs")
    _close(model.decode(codes, text, specs, noise_scale=0.0, sv_emb=embs), version, "out_wav_two_refs")


def test_every_golden_sovits_key_is_checked(version):
    """The tests above check these names; a key the golden set adds must not go unchecked."""
    n_speeds = len(runs()["s2"]["speeds"])
    checked = {"out_codes_from_ssl", "out_quantized", "out_ge_refenc", "out_sv_proj", "out_ge", "out_ge512"}
    checked |= {"out_encp_m_p", "out_encp_logs_p", "out_flow_z", "out_wav_speed1", "out_ge_ref2_only"}
    checked |= {"out_ge_two_refs", "out_ge512_two_refs", "out_wav_two_refs"}
    checked |= {"noise_dbg_randn", "noise_out_flow_z", "noise_out_wav"}
    checked |= {f"out_{kind}_speed_i{i}" for i in range(n_speeds) for kind in ("wav", "encp_m_p")}
    prefix = _prefix(version) + "_"
    in_golden = {k[len(prefix) :] for k in tensor_index() if k.startswith(prefix)}
    assert in_golden == checked


# ----------------------------------------------------------------------------------------------- missing SV input


def test_decode_without_speaker_embedding_is_refused(loaded):
    model = loaded.model
    codes, text = _inputs()
    specs, embs = _refs(two=True)
    with pytest.raises(ReferenceAudioError, match="needs a speaker-verification embedding for each reference"):
        model.decode(codes, text, specs, noise_scale=0.0)
    with pytest.raises(ReferenceAudioError, match="2 reference spectrogram.*1 speaker-verification embedding"):
        model.decode(codes, text, specs, noise_scale=0.0, sv_emb=embs[:1])
    with pytest.raises(ReferenceAudioError, match="width"):
        model.decode(codes, text, specs[:1], noise_scale=0.0, sv_emb=[embs[0][:, :100]])


# ----------------------------------------------------------------------------------------------- export


def test_export_is_byte_identical_and_round_trips(version, tiny_path, loaded, tmp_path):
    model, config, info, _ = loaded
    out = save_sovits_official(model, info.hparams, tmp_path / "voice_e8_s16.pth", info.info_text)
    data = out.read_bytes()
    assert data[:2] == _facts(version)["first_two_bytes"].encode()
    assert data == tiny_path.read_bytes(), "export differs from upstream's own bytes"
    again = load_sovits(out)
    assert again.version == version and again.info.info_text == info.info_text
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_preset_model_exports_with_its_header(version, loaded, tmp_path):
    """A model without a stored config (default hparams) still writes the header and config of its version."""
    _, config, _, _ = loaded
    torch.manual_seed(0)
    out = save_sovits_official(SoVITSSynthesizer(config, with_posterior_encoder=False), None, tmp_path / "a.pth", "x")
    assert out.read_bytes()[:2] == _facts(version)["first_two_bytes"].encode()
    again = load_sovits(out)
    assert again.version == version and again.info.hparams["model"]["version"] == version
    assert again.config.upsample_kernel_sizes == config.upsample_kernel_sizes


def test_full_generator_file_with_posterior_encoder_loads(version, loaded, tmp_path):
    """Pretrained s2Gv2Pro*.pth carry enc_q; with a plain zip header or the version tag, both load."""
    _, config, info, _ = loaded
    torch.manual_seed(1)
    full = SoVITSSynthesizer(config, with_posterior_encoder=True)
    weights = {k: v.half() for k, v in full.state_dict().items()}
    payload = save_torch_zip_bytes({"weight": weights, "config": HParamsRecord.from_dict(info.hparams)})
    for header in (b"PK", _facts(version)["first_two_bytes"].encode()):
        path = tmp_path / f"s2G_{header.decode()}.pth"
        path.write_bytes(header + payload[2:])
        again = load_sovits(path)
        assert again.version == version and again.info.has_posterior_encoder and again.model.enc_q is not None
        assert torch.equal(again.model.enc_q.pre.weight, weights["enc_q.pre.weight"].float())


# ----------------------------------------------------------------------------------------------- detection


def test_v2_file_is_detected_as_v2(tiny_s2_pth):
    found = detect_sovits_version(tiny_s2_pth)
    assert (found.version, found.supported, found.uses_speaker_verification) == ("v2", True, False)


def _spec_rows(name: str) -> list[dict]:
    path = SPEC_KEYS / name
    if not path.is_file():
        pytest.skip(f"spec table not found: {path}")
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize("stated, expected", [(None, "v3 (or v4)"), ("v4", "v4")])
def test_v3_v4_weights_with_a_plain_header_are_refused_plainly(tmp_path, stated, expected):
    weights = {r["key"]: torch.zeros(1, dtype=torch.float16) for r in _spec_rows("s2_v3_state_dict.tsv")}
    config = {"model": {"version": stated}} if stated else {}
    path = tmp_path / "v3.pth"
    path.write_bytes(save_torch_zip_bytes({"weight": weights, "config": config, "info": "x"}))
    found = detect_sovits_version(path)
    assert (found.version, found.source, found.supported) == (expected, "weights", False)
    with pytest.raises(CheckpointError, match="not supported yet") as err:
        load_sovits(path)
    assert str(path) in str(err.value) and "SoVITS Studio runs v1, v2, v2Pro and v2ProPlus" in str(err.value)
    if stated is None:
        with pytest.raises(CheckpointError, match=REFUSAL):
            read_sovits_file(path)


@pytest.mark.parametrize("tag, expected", [(b"02", "v3"), (b"03", "v3 LoRA"), (b"04", "v4 LoRA")])
def test_v3_v4_headers_are_named_without_unpickling(tmp_path, tag, expected):
    path = tmp_path / "later.pth"
    path.write_bytes(tag + b"\x03\x04 not a zip archive at all")  # nothing after the tag is read
    found = detect_sovits_version(path)
    assert (found.version, found.source, found.supported) == (expected, "header", False)
    with pytest.raises(CheckpointError, match=f"GPT-SoVITS {expected} voice.*v3/v4 are not supported yet"):
        load_sovits(path)
    with pytest.raises(CheckpointError, match=f"SoVITS {expected} model .*not a GPT model"):
        load_text2semantic(path)  # picked for the GPT slot by mistake


# ----------------------------------------------------------------------------------------------- official sizes


@pytest.mark.parametrize("name", VERSIONS)
def test_official_preset_matches_the_spec_table_and_parameter_counts(name):
    rows = _spec_rows(f"s2_{name}_state_dict.tsv")
    config = SoVITSConfig.from_name(name)
    with torch.device("meta"):  # shapes only: no 400 MB of random init
        full = SoVITSSynthesizer(config)
        exported = SoVITSSynthesizer(config, with_posterior_encoder=False)
    assert [(k, list(v.shape)) for k, v in full.state_dict().items()] == [
        (r["key"], json.loads(r["shape"])) for r in rows
    ]
    assert list(exported.state_dict()) == [r["key"] for r in rows if not r["key"].startswith("enc_q.")]
    counts = (sum(p.numel() for p in full.parameters()), sum(p.numel() for p in exported.parameters()))
    assert counts == SPEC_PARAMETER_COUNTS[name]
    assert config.uses_speaker_verification and config.p_dropout == 0.0
    assert {17, 23} <= set(config.mpd_periods) and set(SoVITSConfig.v2().mpd_periods).isdisjoint({17, 23})
