"""Directing the voice over HTTP: api_v2 ``/tts`` extension fields (style clip, weighted timbre mix, pause map) and
the OpenAI route's ``pause_map``, on the real server with the tiny models."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
import soundfile as sf
from api_server import en_clips, make_workspace, start_server, tts_params

from studio.inference.pauses import PauseMap

RATE = 32000
FRAME = RATE // 50


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_direction")
    clips = make_workspace(workspace, en_clips(voices), 2)
    server = start_server(
        workspace, tiny_s1_ckpt, tiny_s2_pth, golden, ref_audio=clips[0].path, ref_text=clips[0].text, ref_lang="en"
    )
    yield server, clips
    server.stop()


def _silences(data: bytes) -> list[float]:
    """Seconds of each run (≥ 20 ms) of digital silence in a WAV body."""
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    quiet = np.concatenate([[False], audio == 0, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(quiet))
    return [(b - a) / rate for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= FRAME]


def test_style_timbre_mix_and_pause_map_fields(env):
    server, clips = env
    plain = tts_params(clips[0], "Hello there, my friend.", seed=5)
    directed = plain | {
        "style_ref_audio_path": str(clips[1].path),
        "style_prompt_text": clips[1].text,
        "style_prompt_lang": "en",
        "timbre_refs": [{"path": str(clips[0].path), "weight": 1}, {"path": str(clips[1].path), "weight": 3}],
        "pause_map": {"comma": 0.5},
    }
    a = requests.post(f"{server.url}/tts", json=plain, timeout=120)
    b = requests.post(f"{server.url}/tts", json=directed, timeout=120)
    assert a.status_code == b.status_code == 200, b.text
    assert a.content != b.content
    (pause,) = _silences(b.content)  # the comma's pause, and no other
    assert abs(pause - 0.5) <= FRAME / RATE
    (today,) = _silences(a.content)  # without the fields: cut5 cuts at the comma, fragment_interval after it
    assert abs(today - 0.3) <= FRAME / RATE

    r = requests.get(f"{server.url}/tts", params=plain | {"pause_map": "audiobook"}, timeout=120)
    assert r.status_code == 200
    (pause,) = _silences(r.content)
    assert abs(pause - PauseMap.preset("audiobook").comma) <= FRAME / RATE


def _timbre(clips, weight: float) -> dict:
    return {"timbre_refs": [{"path": str(clips[0].path), "weight": weight}]}


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        (lambda c: {"style_ref_audio_path": "/etc/hostname", "style_prompt_text": "x"}, 403, "style_ref_audio_path"),
        (lambda c: {"timbre_refs": [{"path": "/etc/hostname", "weight": 1}]}, 403, "timbre_refs"),
        (lambda c: _timbre(c, -1), 400, "timbre weight must be a number ≥ 0"),
        (lambda c: _timbre(c, 0), 400, "timbre weights are all 0"),
        (lambda c: {"style_ref_audio_path": str(c[1].path)}, 400, "has no transcript"),
        (lambda c: {"pause_map": "slow"}, 400, "pause_map: use one of natural, audiobook, fast"),
        (lambda c: {"pause_map": "/etc/passwd.json"}, 400, "pause_map: use one of"),
        (lambda c: {"pause_map": {"comma": 9}}, 400, "comma must be between 0 and 5"),
    ],
    ids=["style-outside", "timbre-outside", "negative", "all-zero", "no-transcript", "preset", "file", "range"],
)
def test_bad_extension_fields_are_refused_in_words(env, extra, status, words):
    server, clips = env
    r = requests.post(f"{server.url}/tts", json=tts_params(clips[0]) | extra(clips), timeout=120)
    assert r.status_code == status, r.text
    assert words in r.text


def test_openai_route_takes_a_pause_map(env):
    server, _ = env
    body = {"input": "Hello there, my friend.", "voice": "default", "response_format": "wav", "seed": 3, "lang": "en"}
    r = requests.post(f"{server.url}/v1/audio/speech", json=body | {"pause_map": "fast"}, timeout=120)
    assert r.status_code == 200, r.text
    (pause,) = _silences(r.content)
    assert abs(pause - PauseMap.preset("fast").comma) <= FRAME / RATE
    bad = requests.post(f"{server.url}/v1/audio/speech", json=body | {"pause_map": {"sigh": 1}}, timeout=120)
    assert bad.status_code == 400 and "Unknown mark(s) in the pause map: sigh" in bad.text
