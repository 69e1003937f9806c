"""A larger Whisper model: chosen per workspace, looked up in the models folder, refused when missing or only
partly downloaded, and fetched like the base models — here from a stand-in hub on 127.0.0.1 serving small fake
files (tests never download anything real).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import pytest

from studio.cli import main
from studio.errors import ASRModelMissingError, StudioError
from studio.pretrained import ASR_MODELS, PretrainedAssets, asr_model
from studio.services.asr_choice import ASRChoice
from studio.services.dataset_prep import DatasetPrepService

SMALL = ASR_MODELS["whisper-small"]


def _fake_model(folder: Path, files=SMALL.files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / name).write_bytes(b"{}" if name.endswith(".json") else b"fake " + name.encode())
    return folder


@pytest.fixture
def choice(tmp_path) -> ASRChoice:
    return ASRChoice(tmp_path / "ws", PretrainedAssets(tmp_path / "pre"))


def test_the_packaged_base_model_is_the_default_and_a_missing_model_is_refused(choice, tmp_path):
    assert choice.name == "whisper-base"
    with pytest.raises(ASRModelMissingError, match="whisper-small") as info:
        choice.choose("small")
    assert "studio download --asr small" in str(info.value)  # the CLI says the command …
    assert "Models & Settings" in info.value.ui_hint  # … the page its button
    assert choice.name == "whisper-base" and not choice.settings_path.exists()  # nothing changed
    with pytest.raises(StudioError, match="Unknown Whisper model 'huge'"):
        asr_model("huge")


def test_a_downloaded_model_is_chosen_kept_in_the_workspace_and_used_for_transcription(choice, tmp_path):
    folder = _fake_model(tmp_path / "pre" / "asr" / "whisper-small")
    choice.settings_path.parent.mkdir(parents=True)
    choice.settings_path.write_text(json.dumps({"ui_language": "ja"}), encoding="utf-8")
    assert choice.choose("small") == "whisper-small"
    saved = json.loads(choice.settings_path.read_text(encoding="utf-8"))
    assert saved == {"ui_language": "ja", "asr_model": "whisper-small"}  # the UI's settings are kept
    again = ASRChoice(tmp_path / "ws", PretrainedAssets(tmp_path / "pre"))  # after a restart
    assert again.name == "whisper-small" and again.path() == folder.resolve()
    states = {s.model.name: s for s in again.states()}
    assert states["whisper-small"].present and states["whisper-small"].chosen
    assert not states["whisper-medium"].present and not states["whisper-medium"].partial
    service = DatasetPrepService(tmp_path / "ws")
    service.asr = again
    assert Path(service.transcriber().model_path) == folder.resolve()  # prep and take checks use it


@pytest.mark.parametrize("leftover", ["model.bin.part", None])
def test_a_partly_downloaded_model_is_refused_with_what_is_missing(choice, tmp_path, leftover):
    folder = _fake_model(tmp_path / "pre" / "asr" / "whisper-small", SMALL.files[:-1])  # no model.bin yet
    if leftover:
        (folder / leftover).write_bytes(b"half")
    with pytest.raises(ASRModelMissingError) as info:
        choice.choose("small")
    message = str(info.value)
    assert "incomplete" in message and "model.bin" in message and "studio download --asr small" in message
    assert choice.name == "whisper-base"
    assert {s.model.name: s for s in choice.states()}["whisper-small"].partial


class _Hub(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` under /Systran/faster-whisper-tiny/resolve/main/, honours Range, sends the sha256 of
    model.bin as X-Linked-ETag (an LFS file on the hub) and a git-style ETag for the small files."""

    files: dict[str, bytes] = {}
    asked: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        prefix = "/Systran/faster-whisper-tiny/resolve/main/"
        rel = urllib.parse.unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else ""
        self.asked.append(rel)
        if rel not in self.files:
            self.send_error(404)
            return
        data = self.files[rel]
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        if rel == "model.bin":
            self.send_header("X-Linked-ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        else:
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


def test_studio_download_asr_fetches_resumes_and_the_model_can_then_be_chosen(tmp_path, monkeypatch):
    tiny = ASR_MODELS["whisper-tiny"]
    _Hub.files = {name: hashlib.sha256(name.encode()).digest() * 50 for name in tiny.files}
    _Hub.asked = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = tmp_path / "pre"
    folder = root / "asr" / "whisper-tiny"
    folder.mkdir(parents=True)
    (folder / "model.bin.part").write_bytes(_Hub.files["model.bin"][:300])  # an interrupted earlier download
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")  # honoured like the bases
    try:
        assert main(["download", "--asr", "tiny", "--pretrained", str(root)]) == 0
    finally:
        server.shutdown()
    assert sorted(_Hub.asked) == sorted(tiny.files)
    for name, data in _Hub.files.items():
        assert (folder / name).read_bytes() == data
    assert not (folder / "model.bin.part").exists()
    choice = ASRChoice(tmp_path / "ws", PretrainedAssets(root))
    assert choice.choose("tiny") == "whisper-tiny" and choice.path() == folder.resolve()


def test_epoch_scoring_hears_with_the_workspace_choice(choice, tmp_path):
    """Best-epoch scoring uses the Whisper model chosen in Models & Settings, as take checks do."""
    from studio.services.epoch_scoring import EpochScorer

    folder = _fake_model(tmp_path / "pre" / "asr" / "whisper-small")
    choice.choose("small")
    scorer = EpochScorer(choice.pretrained, workspace_root=tmp_path / "ws")
    assert Path(scorer.checker._transcriber().model_path) == folder.resolve()
    plain = EpochScorer(choice.pretrained)  # no workspace: the packaged default
    assert Path(plain.checker._transcriber().model_path) != folder.resolve()


def test_studio_prep_defaults_to_the_workspace_choice(choice, tmp_path, monkeypatch, voices, capsys):
    """Without --asr-model, `studio prep` transcribes with the workspace's model, says which, and refuses a chosen
    model that has gone missing before any work (naming it and the download)."""
    import shutil

    monkeypatch.setenv("STUDIO_PRETRAINED", str(tmp_path / "pre"))
    folder = _fake_model(tmp_path / "pre" / "asr" / "whisper-small")
    choice.choose("small")
    shutil.rmtree(folder)
    clip = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    args = ["prep", str(clip), "--name", "joe", "--workspace", str(tmp_path / "ws"), "--no-slice"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "whisper-small" in err and "studio download --asr small" in err
    assert not (tmp_path / "ws" / "joe" / "dataset.list").exists()

    choice.settings_path.unlink()  # nothing chosen: the packaged base model, and it is named
    assert main([*args, "--json"]) == 0
    assert "Transcribing with whisper-base" in capsys.readouterr().err
    assert (tmp_path / "ws" / "joe" / "dataset.list").read_text(encoding="utf-8").strip()
