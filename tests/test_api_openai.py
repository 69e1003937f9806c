"""OpenAI-compatible speech, called through the official ``openai`` Python SDK."""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest
import requests
import soundfile as sf
from api_server import en_clips, make_workspace, read_wav, start_server

from studio.services.voices import VoiceInfo, VoiceLibrary

RATE = 32000
TEXT = "Hello there."


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_openai")
    clips = make_workspace(workspace, en_clips(voices), 2)
    VoiceLibrary(workspace).add(
        VoiceInfo(name="joe", folder=workspace, reference_text=clips[1].text, reference_lang="en", languages=["en"]),
        gpt=tiny_s1_ckpt,
        sovits=tiny_s2_pth,
        reference=clips[1].path,
    )
    server = start_server(
        workspace, tiny_s1_ckpt, tiny_s2_pth, golden, ref_audio=clips[0].path, ref_text=clips[0].text, ref_lang="en"
    )
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0)
    yield server, client
    server.stop()


def _speech(client, **kwargs) -> bytes:
    args = {"model": "tts-1", "voice": "default", "input": TEXT, "extra_body": {"seed": 11, "lang": "en"}}
    args.update(kwargs)
    return client.audio.speech.create(**args).content


def _decode(data: bytes) -> tuple[str, int, int, dict]:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        tags = {**container.metadata, **stream.metadata}
        return stream.codec_context.name, stream.rate, samples, {k.lower(): v for k, v in tags.items()}


def test_wav_through_the_sdk_is_32k_and_marked(env):
    _, client = env
    data = _speech(client, response_format="wav")
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels) == (RATE, 1) and info.frames > 0
    assert b"AI-generated" in data[:200]


@pytest.mark.parametrize(
    ("fmt", "codec", "rate"), [("mp3", "mp3", RATE), ("opus", "opus", 48000), ("flac", "flac", RATE)]
)
def test_compressed_formats_decode_and_carry_the_ai_marker(env, fmt, codec, rate):
    _, client = env
    wav_frames = sf.info(io.BytesIO(_speech(client, response_format="wav"))).frames
    name, got_rate, samples, tags = _decode(_speech(client, response_format=fmt))
    assert name.startswith(codec) and got_rate == rate
    assert samples >= wav_frames * rate / RATE * 0.9
    assert "ai-generated" in tags.get("comment", "").lower()


def test_aac_and_default_format_mp3(env):
    _, client = env
    name, rate, samples, _ = _decode(_speech(client, response_format="aac"))
    assert name == "aac" and rate == RATE and samples > 0
    assert _decode(_speech(client))[0].startswith("mp3")  # OpenAI's default response_format


def test_pcm_is_24k_int16_and_streams(env):
    server, client = env
    frames = sf.info(io.BytesIO(_speech(client, response_format="wav"))).frames
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="default", input=TEXT, response_format="pcm", extra_body={"seed": 11, "lang": "en"}
    ) as response:
        data = b"".join(response.iter_bytes())
    assert len(data) % 2 == 0
    assert abs(len(data) // 2 - frames * 24000 / RATE) < 200
    assert np.abs(np.frombuffer(data, "<i2")).max() > 0


def test_voices_differ_and_seeds_repeat(env):
    server, client = env
    default = read_wav(_speech(client, response_format="wav"))[0]
    again = read_wav(_speech(client, response_format="wav", model="sovits-studio"))[0]
    joe = read_wav(_speech(client, response_format="wav", voice="joe"))[0]
    alloy = read_wav(_speech(client, response_format="wav", voice="alloy"))[0]
    assert default.tolist() == again.tolist() == alloy.tolist()
    assert joe.tolist() != default.tolist()
    as_object = read_wav(_speech(client, response_format="wav", voice={"id": "joe"}))[0]
    assert as_object.tolist() == joe.tolist()


def test_speed_changes_the_duration(env):
    _, client = env
    normal = sf.info(io.BytesIO(_speech(client, response_format="wav"))).frames
    fast = sf.info(io.BytesIO(_speech(client, response_format="wav", speed=2.0))).frames
    assert fast < normal * 0.75


def test_unknown_voice_and_bad_values_are_client_errors(env):
    _, client = env
    with pytest.raises(openai.BadRequestError) as err:
        _speech(client, voice="nobody")
    assert "nobody" in str(err.value) and "joe" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:  # 400 in OpenAI's shape, never FastAPI's 422
        _speech(client, speed=9.0)
    assert err.value.status_code == 400 and err.value.body["param"] == "speed"
    assert "speed: must be at most 4" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        _speech(client, response_format="wma")
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError):
        _speech(client, input="...!?")


def test_models_and_voice_listing(env):
    server, client = env
    ids = [m.id for m in client.models.list()]
    assert "tts-1" in ids and "sovits-studio" in ids
    for path in ("/v1/audio/voices", "/v1/voices"):
        body = requests.get(server.url + path, timeout=30).json()
        assert body["voices"] == ["default", "joe"]
        assert body["data"][1]["languages"] == ["en"]
