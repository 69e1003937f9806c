"""/v1/scripts on a real server with the tiny models: render in the background, progress, audio, subtitles,
one-line edits, cancel and delete, behind the key; /v1/audio/speech is served while a script renders."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from api_server import en_clips, make_workspace, read_wav, start_server

from studio.services.subtitles import parse_srt, parse_vtt
from studio.services.voices import VoiceInfo, VoiceLibrary

SCRIPT = "ALICE: Hello there.\nBOB: Good morning!\n\nALICE: See you soon.\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_scripts")
    clips = make_workspace(workspace, en_clips(voices), 2)
    for name, clip in (("joe", clips[0]), ("ann", clips[1])):
        info = VoiceInfo(name=name, folder=workspace, reference_text=clip.text, reference_lang="en", languages=["en"])
        VoiceLibrary(workspace).add(info, gpt=tiny_s1_ckpt, sovits=tiny_s2_pth, reference=clip.path)
    running = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden)
    yield running
    running.stop()


def _start(server, script=SCRIPT, **settings) -> dict:
    body = {"script": script, "cast": {"ALICE": "joe", "*": "ann"}, "name": "scene"}
    body["settings"] = {"seed": 5, "check": False, **settings}
    reply = requests.post(f"{server.url}/v1/scripts", json=body, headers=server.key_headers, timeout=60)
    assert reply.status_code == 202, reply.text
    return reply.json()


def _wait(server, script_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/scripts/{script_id}", timeout=30).json()
        if status["state"] not in ("rendering",):
            return status
        time.sleep(0.1)
    raise AssertionError(f"the render did not finish: {status}")


def test_render_over_http(server):
    started = _start(server)
    assert started["total"] == 3 and started["state"] == "rendering"
    status = _wait(server, started["id"])
    assert (status["state"], status["done"], status["ok"], status["warned"]) == ("done", 3, 3, 0)
    assert [(ln["speaker"], ln["voice"], ln["symbol"]) for ln in status["lines"]] == [
        ("ALICE", "joe", "✓"), ("BOB", "ann", "✓"), ("ALICE", "joe", "✓")
    ]  # fmt: skip
    audio = requests.get(server.url + status["audio_url"], timeout=30)
    assert audio.headers["content-type"] == "audio/wav"
    samples, rate = read_wav(audio.content)
    srt = requests.get(server.url + status["subtitles_url"], timeout=30).text
    vtt = requests.get(server.url + status["subtitles_url"], params={"format": "vtt"}, timeout=30).text
    for cues in (parse_srt(srt), parse_vtt(vtt)):
        assert [c.text for c in cues] == ["Hello there.", "Good morning!", "See you soon."]
        assert cues[-1].end == pytest.approx(len(samples) / rate, abs=0.01)
    line = requests.get(server.url + status["lines"][1]["audio_url"], timeout=30)
    assert read_wav(line.content)[0].size > 0

    # one edited line: only it is rendered again (its seed and text change, the others keep theirs)
    url = f"{server.url}/v1/scripts/{started['id']}/lines/1"
    edited = requests.post(url, json={"text": "Good evening!", "settings": {"seed": 99}}, headers=server.key_headers)
    assert edited.status_code == 202, edited.text
    after = _wait(server, started["id"])
    assert after["lines"][1]["text"] == "Good evening!" and after["lines"][1]["seed"] == 99
    assert [after["lines"][i]["seed"] for i in (0, 2)] == [status["lines"][i]["seed"] for i in (0, 2)]
    assert "Good evening!" in requests.get(server.url + after["subtitles_url"], timeout=30).text


def test_speech_is_served_while_a_script_renders_and_cancel(server):
    started = _start(server, script="\n".join(f"ALICE: Line number {n}." for n in range(8)))
    speech = requests.post(
        f"{server.url}/v1/audio/speech",
        json={"input": "Quick question.", "voice": "joe", "response_format": "wav", "seed": 1},
        timeout=120,
    )
    assert speech.status_code == 200
    mid = requests.get(f"{server.url}/v1/scripts/{started['id']}", timeout=30).json()
    assert mid["done"] < mid["total"]  # the speech request did not wait for the whole script
    cancel = requests.post(f"{server.url}/v1/scripts/{started['id']}/cancel", headers=server.key_headers)
    assert cancel.status_code == 202
    stopped = _wait(server, started["id"])
    assert stopped["state"] == "cancelled" and stopped["done"] < 8 and "audio_url" not in stopped
    not_ready = requests.get(f"{server.url}/v1/scripts/{started['id']}/audio", timeout=30)
    assert not_ready.status_code == 409 and "not rendered yet" in not_ready.json()["error"]["message"]
    gone = requests.delete(f"{server.url}/v1/scripts/{started['id']}", headers=server.key_headers, timeout=90)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert not (Path(server.app.state.engine.settings.workspace) / "scripts" / started["id"]).exists()
    missing = requests.get(f"{server.url}/v1/scripts/{started['id']}", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_key_and_bad_input(server):
    body = {"script": SCRIPT, "cast": {"*": "joe"}, "settings": {"check": False}}
    no_key = requests.post(f"{server.url}/v1/scripts", json=body, timeout=30)
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    bad = requests.post(
        f"{server.url}/v1/scripts", json={**body, "script": "ALICE: hi [shout]"}, headers=server.key_headers
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("line 1, column 11: Unknown direction [shout]")
    uncast = requests.post(
        f"{server.url}/v1/scripts", json={**body, "cast": {"ALICE": "nobody", "*": "ann"}}, headers=server.key_headers
    )
    assert uncast.status_code == 400 and "no voice named 'nobody'" in uncast.json()["error"]["message"]
    uncast = requests.post(
        f"{server.url}/v1/scripts", json={**body, "cast": {"ALICE": "joe"}}, headers=server.key_headers
    )
    assert uncast.status_code == 400 and uncast.json()["error"]["message"].startswith("No voice for BOB.")
