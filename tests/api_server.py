"""Helpers for the HTTP API tests: the real app served by uvicorn on a free localhost port, with tiny models.

The tiny GPT never says "stop", so the servers cap sentences at a few semantic tokens; the models are loaded
once per test process and shared by every server the tests start.
"""

from __future__ import annotations

import functools
import io
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from studio.api.app import create_app
from studio.api.config import ServerSettings
from studio.services.synthesis import SynthesisService

MAX_TOKENS = 12
CLIP_TEXTS_FILE = "metadata.csv"


@functools.cache
def shared_service(hubert_dir: Path, bert_dir: Path) -> SynthesisService:
    # fp32: the exact mode, in which a request answers the same alone or batched with concurrent ones
    return SynthesisService(device="cpu", hubert_dir=hubert_dir, bert_dir=bert_dir, precision="fp32")


@dataclass
class Clip:
    path: Path
    text: str


def en_clips(voices: Path) -> list[Clip]:
    """The en_joe clips with their transcripts (from the voice's metadata.csv)."""
    import csv

    folder = voices / "en_joe"
    with open(folder / CLIP_TEXTS_FILE, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Clip(folder / r["file"], r["text"]) for r in rows if 3.0 <= float(r["duration_s"]) <= 10.0]


def make_workspace(root: Path, clips: list[Clip], count: int) -> list[Clip]:
    """Copy ``count`` clips into ``root/refs`` (inside the workspace, so requests may name them)."""
    refs = root / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    out = []
    for clip in clips[:count]:
        target = refs / clip.path.name
        shutil.copyfile(clip.path, target)
        out.append(Clip(target, clip.text))
    return out


class RunningServer:
    """``create_app(settings)`` served by a real uvicorn server in a background thread."""

    def __init__(self, settings: ServerSettings, service: SynthesisService) -> None:
        import uvicorn

        self.app = create_app(settings, service=service)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.app.state.control.server = self.server
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 120.0) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_headers(self) -> dict:
        """The header state-changing routes need: the server's key (given, or the workspace's stored one)."""
        return {"Authorization": f"Bearer {self.app.state.engine.settings.control_key}"}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def tiny_settings(workspace: Path, s1: Path, s2: Path, golden: Path, **overrides) -> ServerSettings:
    values = dict(
        workspace=workspace,
        pretrained=workspace / "pretrained",
        gpt_path=s1,
        sovits_path=s2,
        hubert_dir=golden / "hf_tiny_hubert",
        bert_dir=golden / "hf_tiny_bert",
        device="cpu",
        max_tokens_per_sentence=MAX_TOKENS,
    )
    values.update(overrides)
    return ServerSettings(**values)


def start_server(workspace: Path, s1: Path, s2: Path, golden: Path, **overrides) -> RunningServer:
    settings = tiny_settings(workspace, s1, s2, golden, **overrides)
    service = shared_service(settings.hubert_dir, settings.bert_dir)
    return RunningServer(settings, service).start()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    return audio, rate


def tts_params(clip: Clip, text: str = "Hello there.", **extra) -> dict:
    """The parameter set GPT-SoVITS clients send to /tts (everything else at its default)."""
    params = {
        "text": text,
        "text_lang": "en",
        "ref_audio_path": str(clip.path),
        "prompt_lang": "en",
        "prompt_text": clip.text,
    }
    params.update(extra)
    return params
