"""v2Pro/v2ProPlus voices wherever v2 voices work: synthesis (checked against upstream's chain), the HTTP API's
weight swap, the voice pack manifest, base models by version (choice and download), missing speaker-verification
model. The SV network is the expensive part: one module-scoped synthesizer computes each reference's embedding once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
import torch
from api_server import RunningServer, en_clips, make_workspace, read_wav, tiny_settings, tts_params
from golden_v2pro_utils import TOL_EMBEDDING, TOL_EXACT, load_npz, runs

from studio.cli import main
from studio.errors import MissingPretrainedError, StudioError, TrainingError, VoicePackError
from studio.inference.requests import SynthesisRequest
from studio.inference.synthesizer import TextFeatures
from studio.pretrained import ALL_FILES, PretrainedAssets, download, files_for
from studio.services.synthesis import SynthesisService
from studio.voicepack.manifest import VoiceManifest

VERSION = "v2ProPlus"


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def service(tiny_v2proplus_pretrained) -> SynthesisService:
    """The exact mode: these tests hold the service to upstream's numbers (lighter modes: tests/test_precision.py)."""
    return SynthesisService(PretrainedAssets(tiny_v2proplus_pretrained), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def two_refs(golden_v2pro, tmp_path_factory) -> tuple[Path, Path]:
    """The golden reference clip and the second golden reference (32 kHz float, peak > 1) as a float WAV."""
    ref2 = tmp_path_factory.mktemp("ref2") / "ref2.wav"
    sf.write(ref2, load_npz()["ref2_in_wav32k"][0], 32000, subtype="FLOAT")
    return golden_v2pro / "sv_ref.wav", ref2


def test_v2proplus_synthesis_follows_upstreams_chain(service, two_refs):
    """Base voice = the best base present (v2ProPlus here); each reference's timbre spectrogram and SV embedding
    equal upstream's, are computed once, and decoding with one or two references gives upstream's waveform."""
    g, prefix = load_npz(), runs()["s2"]["prefixes"][VERSION]
    synth = service.synthesizer()
    assert synth.models.version == VERSION and synth.models.speaker_verifier is not None
    request = SynthesisRequest(
        text="unused", lang="en", reference=two_refs[0], aux_references=(two_refs[1],), ref_text="", noise_scale=0.0
    )
    prompt = synth.reference_prompt(request)
    assert synth.reference_prompt(request) is prompt  # cached with the other reference features
    assert len(prompt.specs) == len(prompt.sv_embeddings) == 2
    assert rel_err(prompt.specs[0], g["ref_out_spec"]) < TOL_EXACT
    assert rel_err(prompt.specs[1], g["ref2_out_spec"]) < TOL_EXACT
    assert rel_err(prompt.sv_embeddings[0], g["sv_out_emb"]) < TOL_EMBEDDING
    assert rel_err(prompt.sv_embeddings[1], g["sv2_out_emb"]) < TOL_EMBEDDING

    s2 = runs()["s2"]
    feats = TextFeatures(list(s2["text_ids"]), torch.zeros(1024, len(s2["text_ids"])), "")
    gen = torch.Generator().manual_seed(0)
    both = synth.decode_tokens(list(s2["semantic_ids"]), feats, prompt, request, gen)
    assert rel_err(both, g[f"{prefix}_out_wav_two_refs"].reshape(-1)) < 10 * TOL_EMBEDDING
    one = dataclasses.replace(prompt, specs=prompt.specs[:1], sv_embeddings=prompt.sv_embeddings[:1])
    alone = synth.decode_tokens(list(s2["semantic_ids"]), feats, one, request, gen)
    assert rel_err(alone, g[f"{prefix}_out_wav_speed1"].reshape(-1)) < 10 * TOL_EMBEDDING
    assert rel_err(alone, both) > 1e-3  # the second reference (and its own embedding) is heard

    streamed = dataclasses.replace(request, text="Hello there.", stream_tokens=4, max_tokens_per_sentence=12, seed=1)
    chunks = list(synth.stream(streamed))  # the cached prompt (and its SV embeddings) serve streaming too
    audio = np.concatenate([c.audio for c in chunks])
    assert len(chunks) > 1 and audio.size > 0 and np.isfinite(audio).all() and np.abs(audio).max() > 0


def _without_sv(tiny_v2proplus_pretrained: Path, target: Path) -> Path:
    """A copy of the tiny v2ProPlus base folder without the speaker-verification checkpoint."""
    from studio import pretrained as layout

    target.mkdir(parents=True)
    for item in tiny_v2proplus_pretrained.iterdir():
        if item.name != layout.SV_DIR:
            (target / item.name).symlink_to(item.resolve())
    return target


def test_a_v2pro_voice_without_the_sv_model_names_the_file_and_the_download(
    tiny_v2proplus_pretrained, golden_v2pro, tmp_path, capsys
):
    from studio import pretrained as layout
    from studio.services.training import TrainingService

    root = _without_sv(tiny_v2proplus_pretrained, tmp_path / "pre")
    out = tmp_path / "out.wav"
    code = main(["synth", "--pretrained", str(root), "--sovits", str(root / layout.SOVITS_V2PROPLUS),
                 "--gpt", str(root / layout.GPT_S1V3), "--ref", str(golden_v2pro / "sv_ref.wav"), "--text", "Hello.",
                 "--lang", "en", "--out", str(out), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "pretrained_eres2netv2w24s4ep4.ckpt" in err and "studio download --version v2ProPlus" in err
    with pytest.raises(MissingPretrainedError, match="pretrained_eres2netv2w24s4ep4"):
        SynthesisService(PretrainedAssets(root), device="cpu").synthesizer()
    assets = PretrainedAssets(root)
    assert not assets.has_base(VERSION) and assets.best_base() is None
    with pytest.raises(TrainingError) as exc:
        TrainingService(tmp_path / "ws", assets)._check_base_models(False, VERSION)
    assert "pretrained_eres2netv2w24s4ep4.ckpt" in str(exc.value) and "--version v2ProPlus" in str(exc.value)


def test_set_sovits_weights_with_a_v2proplus_file(tiny_v2proplus_pretrained, tiny_s2_pth, voices, golden, tmp_path):
    """A server started on a v2 voice swaps to a v2ProPlus .pth by /set_sovits_weights and speaks with it."""
    from studio import pretrained as layout

    workspace = tmp_path / "ws"
    clips = make_workspace(workspace, en_clips(voices), 1)
    models = workspace / "models"
    models.mkdir()
    pth = shutil.copyfile(tiny_v2proplus_pretrained / layout.SOVITS_V2PROPLUS, models / "my_voice_v2proplus.pth")
    settings = tiny_settings(workspace, golden / "tiny_s1.ckpt", tiny_s2_pth, golden, pretrained=tiny_v2proplus_pretrained)
    service = SynthesisService(
        PretrainedAssets(tiny_v2proplus_pretrained), device="cpu", hubert_dir=settings.hubert_dir,
        bert_dir=settings.bert_dir,
    )  # fmt: skip
    server = RunningServer(settings, service).start()
    try:
        assert requests.get(f"{server.url}/tts", params=tts_params(clips[0], seed=3), timeout=300).status_code == 200
        assert requests.get(f"{server.url}/", timeout=30).json()["model_version"] == "v2"
        r = requests.get(
            f"{server.url}/set_sovits_weights", params={"weights_path": str(pth)}, headers=server.key_headers, timeout=120
        )
        assert r.status_code == 200 and r.json() == {"message": "success"}, r.text
        assert requests.get(f"{server.url}/", timeout=30).json()["model_version"] == VERSION
        r = requests.get(f"{server.url}/tts", params=tts_params(clips[0], seed=3), timeout=300)
        assert r.status_code == 200, r.text
        audio, rate = read_wav(r.content)
        assert rate == 32000 and len(audio) > 0 and np.abs(audio).max() > 0
    finally:
        server.stop()


def test_manifest_records_the_model_version_and_reads_older_packs():
    from studio.voicepack.manifest import ConsentRecord, FileRef, WeightsInfo

    sha = "0" * 64
    manifest = VoiceManifest(
        name="alice", languages=("en",), base_model={s: FileRef(f"{s}.bin", sha) for s in ("gpt", "sovits")},
        configs={}, weights=WeightsInfo(kind="lora"), references=(),
        consent=ConsentRecord("Alice", "My voice.", "2025-01-01", True), model_version=VERSION,
    )  # fmt: skip
    again = VoiceManifest.from_json(manifest.to_json())
    assert again.model_version == VERSION and again == manifest
    older = manifest.to_dict()
    del older["model_version"]  # a pack written before versions were recorded
    assert VoiceManifest.from_dict(older).model_version == "v2"
    with pytest.raises(VoicePackError, match="v3/v4 voices are not supported yet"):
        VoiceManifest.from_dict({**older, "model_version": "v4"})


def _touch(root: Path, version: str) -> None:
    for f in files_for(version):
        if f.required:
            (root / f.path).parent.mkdir(parents=True, exist_ok=True)
            (root / f.path).write_bytes(b"x")


def test_training_starts_from_the_best_base_present_unless_told(tmp_path):
    from studio.services.training import TrainingService

    root = tmp_path / "pre"
    service = TrainingService(tmp_path / "ws", PretrainedAssets(root))
    assert service.base_choice().reason == "none_present"
    _touch(root, "v2")
    assert (service.base_choice().version, service.base_choice().reason) == ("v2", "best_present")
    _touch(root, "v2Pro")
    assert service.base_choice().version == "v2Pro"
    _touch(root, "v2ProPlus")
    choice = service.base_choice()
    assert (choice.version, choice.present) == ("v2ProPlus", ("v2ProPlus", "v2Pro", "v2"))
    assert "v2ProPlus" in choice.describe() and "also present: v2Pro, v2" in choice.describe()
    assert service.base_choice("v2").reason == "requested"


class _Hub(http.server.BaseHTTPRequestHandler):
    """A stand-in for the hub: serves ``files`` under /lj1995/GPT-SoVITS/resolve/main/, honours Range, sends the
    sha256 as X-Linked-ETag (as the hub does for LFS files) and counts requests per path."""

    files: dict[str, bytes] = {}
    asked: list[str] = []
    bad_sha = False

    def do_GET(self):  # noqa: N802 - http.server API
        prefix = "/lj1995/GPT-SoVITS/resolve/main/"
        rel = requests.utils.unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else ""
        self.asked.append(rel)
        if rel not in self.files:
            self.send_error(404)
            return
        data = self.files[rel]
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        sha = hashlib.sha256(b"other" if self.bad_sha else data).hexdigest()
        self.send_header("X-Linked-ETag", f'"{sha}"')
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):  # quiet
        pass


def test_download_fetches_a_version_in_upstreams_layout_and_resumes(tmp_path):
    files = {f.path: hashlib.sha256(f.path.encode()).digest() * 40 for f in ALL_FILES}
    _Hub.files, _Hub.asked = files, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    root = tmp_path / "pre"
    try:
        partial = root / "v2Pro" / "s2Gv2ProPlus.pth.part"  # an interrupted earlier download
        partial.parent.mkdir(parents=True)
        partial.write_bytes(files["v2Pro/s2Gv2ProPlus.pth"][:100])
        assert main(["download", "--pretrained", str(root), "--endpoint", endpoint, "--version", VERSION]) == 0
    finally:
        server.shutdown()
    wanted = {f.path for f in files_for(VERSION) if f.required}
    assert set(_Hub.asked) == wanted  # no discriminator, nothing of v2
    for rel in ("s1v3.ckpt", "v2Pro/s2Gv2ProPlus.pth", "sv/pretrained_eres2netv2w24s4ep4.ckpt"):
        assert (root / rel).read_bytes() == files[rel]
    assert not partial.exists() and PretrainedAssets(root).best_base() == VERSION
    _Hub.bad_sha = True  # the hub announces another checksum than the bytes it sends
    disc = next(f for f in files_for(VERSION) if not f.required)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(StudioError, match="Checksum mismatch"):
            download(root, (disc,), endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        _Hub.bad_sha = False
    assert not (root / disc.path).exists() and not (root / f"{disc.path}.part").exists()


def test_a_known_timbre_clip_needs_no_speaker_verifier(tiny_v2proplus_pretrained, two_refs, tmp_path, monkeypatch):
    """A timbre clip's speaker embedding is kept in the reference cache: a new service (a restart) gives the same
    embedding without loading the verifier; a clip it has not embedded loads it."""
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    request = SynthesisRequest(text="unused", lang="en", reference=two_refs[0], ref_text="", noise_scale=0.0)

    def fresh():
        return SynthesisService(PretrainedAssets(tiny_v2proplus_pretrained), device="cpu", precision="fp32").synthesizer()

    first = fresh()
    assert not first.models.speaker_verifier.loaded  # nothing embedded yet
    embedded = first.reference_prompt(request).sv_embeddings
    assert first.models.speaker_verifier.loaded
    again = fresh()
    cached = again.reference_prompt(request).sv_embeddings
    assert not again.models.speaker_verifier.loaded
    assert len(cached) == len(embedded) == 1 and torch.equal(cached[0], embedded[0])
    both = again.reference_prompt(dataclasses.replace(request, aux_references=(two_refs[1],))).sv_embeddings
    assert again.models.speaker_verifier.loaded and torch.equal(both[0], embedded[0])
    assert not torch.equal(both[1], embedded[0])
