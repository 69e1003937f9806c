"""Issue 11 for the HTTP API and the CLI, as a user meets it: web pages cannot drive the server, state
changes need the install's key, limits and hang-ups, one error shape per family, refusals in words,
streams that common readers read whole, and busy ports."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import openai
import pytest
import requests
import soundfile as sf
from api_server import en_clips, make_workspace, start_server, tts_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_guard")
    clips = make_workspace(workspace, en_clips(voices), 2)
    server = start_server(workspace, tiny_s1_ckpt, tiny_s2_pth, golden, max_text_chars=2000)
    yield server, clips, workspace
    server.stop()


def test_foreign_hosts_and_other_sites_pages_are_refused(env):
    server, clips, _ = env
    port = server.port
    params = tts_params(clips[0])
    refused = [
        {"Host": f"attacker.example:{port}"},  # DNS rebinding: the page's own name points at 127.0.0.1
        {"Origin": "http://127.0.0.1:8000"},  # another localhost port is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "https://evil.example/page.html"},
    ]
    for headers in refused:
        for method in ("get", "post"):
            r = requests.request(method, f"{server.url}/tts", params=params, headers=headers, timeout=30)
            assert r.status_code == 403, (headers, method)
            assert "refused" in r.json()["message"] or "not this server" in r.json()["message"]
        r = requests.get(f"{server.url}/v1/models", headers=headers, timeout=30)
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    allowed = [{}, {"Host": f"localhost:{port}"}, {"Origin": server.url}, {"Sec-Fetch-Site": "same-origin"}]
    for headers in allowed:
        assert requests.get(f"{server.url}/v1/models", headers=headers, timeout=30).status_code == 200, headers


def test_state_changes_need_the_install_key_synthesis_does_not(env):
    server, clips, workspace = env
    key_file = workspace / "config" / "api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32 and server.key_headers == {"Authorization": f"Bearer {key}"}
    assert requests.get(f"{server.url}/tts", params=tts_params(clips[0]), timeout=120).status_code == 200
    change = {"refer_audio_path": str(clips[1].path), "prompt_text": clips[1].text, "prompt_lang": "en"}
    for path, params in (("/set_refer_audio", change), ("/control", {"command": "exit"})):
        r = requests.get(server.url + path, params=params, timeout=30)
        assert r.status_code == 401 and str(key_file) in r.json()["message"]
    assert server.app.state.engine.current.reference is None and server.thread.is_alive()
    ok = requests.get(server.url + "/set_refer_audio", params=change, headers={"X-API-Key": key}, timeout=60)
    assert ok.status_code == 200
    from studio.services.api_key import resolve_keys

    assert resolve_keys(workspace).control == key  # the same key on every start


def test_explicit_key_from_env_or_flag_wins(tmp_path, monkeypatch):
    from studio.cli import build_parser
    from studio.commands.serve import settings_from_args

    parser = build_parser()
    monkeypatch.setenv("STUDIO_API_KEY", "from-env")
    settings = settings_from_args(parser.parse_args(["serve", "--workspace", str(tmp_path)]))
    assert (settings.api_key, settings.control_key) == ("from-env", "from-env")
    settings = settings_from_args(parser.parse_args(["serve", "--workspace", str(tmp_path), "--api-key", "flag"]))
    assert (settings.api_key, settings.control_key) == ("flag", "flag")
    assert not (tmp_path / "config" / "api_key").exists()  # no stored key needed when one is given


def test_body_and_text_limits_in_each_family_shape(env):
    server, clips, _ = env
    huge = {**tts_params(clips[0]), "text": "x" * (2 << 20)}
    r = requests.post(f"{server.url}/tts", json=huge, timeout=30)
    assert r.status_code == 413 and "at most 1,048,576 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"text": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    r = requests.post(f"{server.url}/tts", data=chunks(), headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "too large" in r.json()["message"]
    r = requests.post(f"{server.url}/v1/audio/speech", json={"input": "x" * (2 << 20), "voice": "alloy"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    long_text = "Hello there. " * 200  # 2,600 characters > this server's 2,000
    r = requests.get(f"{server.url}/tts", params=tts_params(clips[0], text=long_text), timeout=30)
    assert r.status_code == 400 and r.json()["message"].startswith("text is too long: 2,600 characters")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="alloy", input=long_text)
    assert err.value.body["param"] == "input" and "too long" in err.value.body["message"]


def test_nonsense_values_are_refused_in_words(env):
    server, clips, _ = env
    cases = [
        ({"seed": 10**30}, "seed must be between 0 and 4294967295"),
        ({"streaming_mode": "yes"}, "the value of streaming_mode must be"),
        ({"batch_size": -3}, "batch_size must be between 1 and 200"),
        ({"batch_size": 100000}, "batch_size must be between 1 and 200"),
    ]
    for change, message in cases:
        for method, key in (("get", "params"), ("post", "json")):
            r = requests.request(method, f"{server.url}/tts", **{key: tts_params(clips[0], **change)}, timeout=30)
            assert r.status_code == 400, (change, method, r.text)
            assert r.json()["message"].startswith(message), r.json()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", extra_body={"seed": 2**40})
    assert err.value.body["param"] == "seed" and "4294967295" in err.value.body["message"]
    r = requests.get(f"{server.url}/tts", params=tts_params(clips[0], text="Привет, мир."), timeout=60)
    assert r.status_code == 400 and "can be spoken" in r.json()["Exception"]


def test_a_client_that_hangs_up_frees_the_worker(env):
    server, clips, _ = env
    queue = server.app.state.engine.queue
    text = "Go on. " * 280  # 280 sentences: half a minute of work on an idle machine, more on a busy one
    for method, key in (("get", "params"), ("post", "json")):
        with pytest.raises(requests.exceptions.ReadTimeout):
            r = requests.request(method, f"{server.url}/tts", **{key: tts_params(clips[0], text=text)}, timeout=3)
            pytest.fail(f"answered before the client hung up: {r.status_code} {r.text[:300]}")
        hung_up = time.monotonic()
        deadline = hung_up + 20
        while queue.busy and time.monotonic() < deadline:
            time.sleep(0.2)
        waited = time.monotonic() - hung_up
        assert not queue.busy, f"{method}: the worker kept synthesising for {waited:.0f} s after the client left"
    assert requests.get(f"{server.url}/tts", params=tts_params(clips[0]), timeout=120).status_code == 200


def _read_all(reader: str, data: bytes) -> np.ndarray:
    if reader == "soundfile":
        return sf.read(io.BytesIO(data), dtype="int16")[0]
    if reader == "wave":
        with wave.open(io.BytesIO(data)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), "<i2")
    import av

    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    pcm = np.concatenate(frames)
    return pcm if pcm.dtype == np.int16 else (np.clip(pcm, -1, 1) * 32767).astype(np.int16)


def test_streams_read_back_whole_with_several_readers(env):
    server, clips, _ = env
    params = tts_params(clips[0], text="Good morning. See you soon. Take care.", seed=4)
    whole = requests.get(f"{server.url}/tts", params=params, timeout=120)
    expected = sf.read(io.BytesIO(whole.content), dtype="int16")[0]
    streamed = requests.get(f"{server.url}/tts", params={**params, "streaming_mode": 1}, timeout=120).content
    for reader in ("soundfile", "wave", "av"):
        assert _read_all(reader, streamed).tolist() == expected.tolist(), reader
    ogg = requests.get(f"{server.url}/tts", params={**params, "streaming_mode": 1, "media_type": "ogg"}).content
    assert ogg.count(b"OggS\x00\x02") == 1  # one logical stream: a single beginning-of-stream page
    for reader in ("soundfile", "av"):
        got = _read_all(reader, ogg)
        assert abs(len(got) - len(expected)) <= 0.01 * len(expected), reader
        assert np.abs(got.astype(float)).max() > 1000, reader


def _cli(*args: str, env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = _cli("-m", "studio", "serve", "--workspace", str(tmp_path), "--port", port, timeout=120)
        webui = _cli("webui.py", "--no-browser", "--workspace", str(tmp_path), "--port", port, timeout=120)
    for run in (serve, webui):
        assert run.returncode != 0
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"Port {port} on 127.0.0.1 is already in use" in lines[0], run.stderr
        assert "--port auto" in lines[0]


def test_cli_refuses_nonsense_and_writes_the_format_asked(tmp_path, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    from conftest import build_tiny_pretrained

    pretrained = build_tiny_pretrained(tmp_path / "pretrained", golden, tiny_s2_pth)
    clip = en_clips(voices)[0]
    base = ["-m", "studio", "synth", "--pretrained", str(pretrained), "--ref", str(clip.path)]
    base += ["--ref-text", clip.text, "--max-tokens", "12", "--device", "cpu"]
    seed = _cli(*base, "--text", "Hi.", "--seed", str(10**30), "--out", str(tmp_path / "a.wav"))
    assert seed.returncode == 2 and "the seed must be between -1 and 4294967295" in seed.stderr
    bad_ext = _cli(*base, "--text", "Hi.", "--out", str(tmp_path / "a.xyz"))
    assert bad_ext.returncode == 1 and "Cannot write audio as '.xyz'" in bad_ext.stderr
    assert "Traceback" not in bad_ext.stderr and not (tmp_path / "a.xyz").exists()
    cyrillic = _cli(*base, "--text", "Привет, как дела?", "--lang", "en", "--out", str(tmp_path / "c.wav"))
    assert cyrillic.returncode == 1 and "can be spoken" in cyrillic.stderr and not (tmp_path / "c.wav").exists()
    for ext, codec in ((".mp3", "mp3"), (".ogg", "vorbis"), (".flac", "flac")):
        out = tmp_path / f"hello{ext}"
        done = _cli(*base, "--text", "Hello there.", "--lang", "en", "--seed", "1", "--out", str(out))
        assert done.returncode == 0, done.stderr
        import av

        with av.open(str(out)) as container:
            assert container.streams.audio[0].codec_context.name.startswith(codec), ext
            assert sum(f.samples for f in container.decode(audio=0)) > 0
    batch = _cli("-m", "studio", "train", "--batch-size", "100000", "someone")
    assert batch.returncode == 2 and "the batch size must be between 1 and 256" in batch.stderr


def test_importing_a_voice_with_a_one_second_reference_is_refused(tmp_path, voices, golden, tiny_s2_pth):
    from conftest import build_tiny_pretrained

    pretrained = build_tiny_pretrained(tmp_path / "pretrained", golden, tiny_s2_pth)
    audio, rate = sf.read(en_clips(voices)[0].path)
    folder = tmp_path / "download"
    folder.mkdir()
    sf.write(folder / "Hello there.wav", audio[:rate], rate)  # 1 s
    from studio.pretrained import PretrainedAssets

    assets = PretrainedAssets(pretrained)
    (folder / "alice.ckpt").write_bytes(assets.gpt_path.read_bytes())
    (folder / "alice.pth").write_bytes(assets.sovits_path.read_bytes())
    workspace = tmp_path / "ws"
    run = _cli("-m", "studio", "import", str(folder), "--workspace", str(workspace), "--pretrained", str(pretrained))
    assert run.returncode == 1 and "1.0 s long" in run.stderr and "3–10 s" in run.stderr, run.stderr
    assert not (workspace / "voices" / "alice").exists()
