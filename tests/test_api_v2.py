"""api_v2 compatibility: the real server, called with the parameter sets GPT-SoVITS clients send."""

from __future__ import annotations

import io
import shutil
import struct

import numpy as np
import pytest
import requests
import soundfile as sf
from api_server import en_clips, make_workspace, read_wav, start_server, tts_params

RATE = 32000


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_v2")
    clips = make_workspace(workspace, en_clips(voices), 2)
    server = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden)
    yield server, clips, workspace
    server.stop()


def _pcm_of_stream(data: bytes) -> np.ndarray:
    """A streamed WAV: the 44-byte header declares an unknown size (0xFFFFFFFF); the rest is int16 PCM."""
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate, _, _, bits = struct.unpack("<HIIHH", data[22:36])
    assert (channels, rate, bits) == (1, RATE, 16)
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert (len(data) - 44) % 2 == 0
    return np.frombuffer(data[44:], dtype="<i2")


def test_get_with_client_defaults_returns_32k_wav_marked_ai_generated(env):
    server, clips, _ = env
    r = requests.get(f"{server.url}/tts", params=tts_params(clips[0]), timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    info = sf.info(io.BytesIO(r.content))
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
    assert info.frames > 0
    assert b"INFOICMT" in r.content[:200] and b"AI-generated" in r.content[:200]
    audio, _ = read_wav(r.content)
    assert np.abs(audio).max() > 0


def test_post_equals_get_for_the_same_seed_and_languages_are_case_insensitive(env):
    server, clips, _ = env
    params = tts_params(clips[0], seed=7)
    got = requests.get(f"{server.url}/tts", params=params, timeout=120)
    posted = requests.post(f"{server.url}/tts", json={**params, "text_lang": "EN", "prompt_lang": "En"}, timeout=120)
    assert got.status_code == posted.status_code == 200, posted.text
    assert read_wav(got.content)[0].tolist() == read_wav(posted.content)[0].tolist()
    other = requests.get(f"{server.url}/tts", params={**params, "text_lang": "EN", "seed": 8}, timeout=120)
    assert other.status_code == 200
    assert read_wav(other.content)[0].tolist() != read_wav(got.content)[0].tolist()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("mode", [1, 2, 3, True])
def test_streaming_modes_send_an_unknown_size_header_then_pcm(env, method, mode):
    """Mode 1 streams whole sentences (the same PCM as a file); 2/3 stream every few tokens inside a sentence."""
    server, clips, _ = env
    params = tts_params(clips[0], text="Good morning. See you soon.", seed=3, min_chunk_length=4)
    whole = requests.post(f"{server.url}/tts", json=params, timeout=120)
    assert whole.status_code == 200
    expected = read_wav(whole.content)[0]
    call = requests.get if method == "get" else requests.post
    key = "params" if method == "get" else "json"
    with call(f"{server.url}/tts", **{key: {**params, "streaming_mode": mode}}, stream=True, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers.get("transfer-encoding") == "chunked"
        data = b"".join(r.iter_content(chunk_size=None))
    pcm = _pcm_of_stream(data)
    if mode in (1, True):
        assert pcm.tolist() == expected.tolist()
    else:  # re-decoded in pieces: the same length up to a token or two per sentence, and real sound
        assert abs(len(pcm) - len(expected)) <= 2 * 2 * 1280
        assert np.abs(pcm).max() > 1000


def test_raw_ogg_and_aac_media_types(env):
    import av

    server, clips, _ = env
    params = tts_params(clips[0], seed=5)
    wav = read_wav(requests.get(f"{server.url}/tts", params=params, timeout=120).content)[0]
    raw = requests.get(f"{server.url}/tts", params={**params, "media_type": "raw"}, timeout=120)
    assert raw.headers["content-type"] == "audio/raw"
    assert np.frombuffer(raw.content, "<i2").tolist() == wav.tolist()
    streamed_raw = requests.get(f"{server.url}/tts", params={**params, "media_type": "raw", "streaming_mode": 1})
    assert streamed_raw.content == raw.content

    ogg = requests.get(f"{server.url}/tts", params={**params, "media_type": "ogg"}, timeout=120)
    assert ogg.headers["content-type"] == "audio/ogg" and ogg.content[:4] == b"OggS"
    info = sf.info(io.BytesIO(ogg.content))
    assert (info.samplerate, info.subtype) == (RATE, "VORBIS") and info.frames > 0

    aac = requests.get(f"{server.url}/tts", params={**params, "media_type": "aac"}, timeout=120)
    assert aac.headers["content-type"] == "audio/aac"
    assert aac.content[0] == 0xFF and aac.content[1] & 0xF0 == 0xF0  # ADTS sync word
    with av.open(io.BytesIO(aac.content)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.rate == RATE
        samples = sum(frame.samples for frame in container.decode(stream))
    assert samples >= len(wav) * 0.9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text": None}, "text is required"),
        ({"text_lang": None}, "text_lang is required"),
        ({"text_lang": "xx"}, "text_lang: xx is not supported in version v2"),
        ({"prompt_lang": None}, "prompt_lang is required"),
        ({"prompt_lang": "klingon"}, "prompt_lang: klingon is not supported in version v2"),
        ({"media_type": "mp4"}, "media_type: mp4 is not supported"),
        ({"text_split_method": "cut9"}, "text_split_method:cut9 is not supported"),
        ({"streaming_mode": 7}, "the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)"),
        ({"ref_audio_path": None}, "ref_audio_path is required"),
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_validation_messages_match_upstream(env, change, message, method):
    server, clips, _ = env
    params = {k: v for k, v in {**tts_params(clips[0]), **change}.items() if v is not None}
    if method == "get":
        r = requests.get(f"{server.url}/tts", params=params, timeout=30)
    else:
        r = requests.post(f"{server.url}/tts", json=params, timeout=30)
    assert r.status_code == 400
    assert r.json() == {"message": message}


def test_synthesis_failure_is_400_tts_failed_with_the_exception(env):
    server, clips, workspace = env
    broken = workspace / "refs" / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio")
    r = requests.get(f"{server.url}/tts", params={**tts_params(clips[0]), "ref_audio_path": str(broken)}, timeout=60)
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "tts failed" and body["Exception"]
    punct = requests.get(f"{server.url}/tts", params=tts_params(clips[0], text="...!?"), timeout=60)
    assert punct.status_code == 400 and punct.json()["message"] == "tts failed"


def test_every_split_method_is_accepted(env):
    server, clips, _ = env
    for n in range(6):
        r = requests.get(f"{server.url}/tts", params=tts_params(clips[0], text_split_method=f"cut{n}"), timeout=60)
        assert r.status_code == 200, (n, r.text)
        assert sf.info(io.BytesIO(r.content)).frames > 0


def test_set_refer_audio_gives_a_default_reference(env):
    server, clips, _ = env
    keyed = server.key_headers
    assert requests.get(f"{server.url}/set_refer_audio", headers=keyed, timeout=30).json() == {
        "message": "refer audio path is required"
    }
    ok = requests.get(
        f"{server.url}/set_refer_audio",
        params={"refer_audio_path": str(clips[1].path), "prompt_text": clips[1].text, "prompt_lang": "en"},
        headers=keyed,
        timeout=60,
    )
    assert ok.status_code == 200 and ok.json() == {"message": "success"}
    implicit = requests.get(f"{server.url}/tts", params={"text": "Hello there.", "text_lang": "en", "seed": 2})
    explicit = requests.get(f"{server.url}/tts", params=tts_params(clips[1], seed=2))
    assert implicit.status_code == 200, implicit.text
    assert read_wav(implicit.content)[0].tolist() == read_wav(explicit.content)[0].tolist()


def test_set_weights_messages_and_swap(env, tiny_s1_ckpt, tiny_s2_pth):
    server, clips, workspace = env
    keyed = server.key_headers
    for kind in ("gpt", "sovits"):
        r = requests.get(f"{server.url}/set_{kind}_weights", headers=keyed, timeout=30)
        assert r.status_code == 400 and r.json() == {"message": f"{kind} weight path is required"}
        junk = workspace / f"junk_{kind}.bin"
        junk.write_bytes(b"not a checkpoint")
        r = requests.get(
            f"{server.url}/set_{kind}_weights", params={"weights_path": str(junk)}, headers=keyed, timeout=60
        )
        assert r.status_code == 400
        assert r.json()["message"] == f"change {kind} weight failed" and r.json()["Exception"]
    copy = workspace / "models" / "my_gpt.ckpt"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(tiny_s1_ckpt, copy)
    r = requests.get(
        f"{server.url}/set_gpt_weights", params={"weights_path": "models/my_gpt.ckpt"}, headers=keyed, timeout=120
    )
    assert r.status_code == 200 and r.json() == {"message": "success"}
    assert requests.get(f"{server.url}/tts", params=tts_params(clips[0]), timeout=120).status_code == 200


def test_control_needs_a_known_command(env):
    server, _, _ = env
    keyed = server.key_headers
    assert requests.get(f"{server.url}/control", headers=keyed, timeout=30).json() == {"message": "command is required"}
    r = requests.get(f"{server.url}/control", params={"command": "dance"}, headers=keyed, timeout=30)
    assert r.status_code == 400 and "not supported" in r.json()["message"]
    r = requests.get(f"{server.url}/control", params={"command": "restart"}, headers=keyed, timeout=120)
    assert r.status_code == 200
    assert requests.get(f"{server.url}/tts", params=tts_params(env[1][0]), timeout=120).status_code == 200


def test_serve_command_reports_an_unknown_voice_without_starting(tmp_path, capsys):
    from studio.cli import main

    code = main(["serve", "--workspace", str(tmp_path), "--voice", "nobody", "--port", "0"])
    assert code == 1
    assert "no voice named 'nobody'" in capsys.readouterr().err


def test_server_length_retries_reach_every_request(env, tiny_s1_ckpt, tiny_s2_pth, golden):
    """With --length-retries, a run-on sentence is generated again, so some seed's audio changes."""
    _, refs, workspace = env
    guarded = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden, length_retries=3, max_tokens_per_sentence=120)
    plain = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden, max_tokens_per_sentence=120)
    try:
        changed = 0
        for seed in range(4):
            params = {**tts_params(refs[0], text="Good morning."), "seed": seed}
            a = requests.get(f"{plain.url}/tts", params=params, timeout=120)
            b = requests.get(f"{guarded.url}/tts", params=params, timeout=120)
            assert a.status_code == b.status_code == 200
            changed += a.content != b.content
        assert changed >= 1
    finally:
        guarded.stop()
        plain.stop()


def test_the_workspace_pronunciation_list_reaches_the_api(env):
    server, refs, workspace = env
    params = {**tts_params(refs[0], text="SoVITS"), "seed": 5}
    lexicon = workspace / "pronunciations.txt"
    try:
        plain = requests.get(f"{server.url}/tts", params=params, timeout=120)
        lexicon.write_text("en | SoVITS | S OW1 V IH0 T S\n", encoding="utf-8")
        mine = requests.get(f"{server.url}/tts", params=params, timeout=120)
        assert plain.status_code == mine.status_code == 200
        assert plain.content != mine.content  # "S O V I T S" spelled out vs the user's reading

        lexicon.write_text("en | SoVITS | S OW1 V IX T S\n", encoding="utf-8")  # a typo, edited by hand
        broken = requests.get(f"{server.url}/tts", params=params, timeout=120)
        assert broken.status_code == 400 and "pronunciations.txt, line 1" in broken.text
    finally:
        lexicon.unlink(missing_ok=True)
