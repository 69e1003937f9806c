"""Many clients at once: every answer is that request's own voice, and a full queue says 503 instead of crashing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import soundfile as sf
from api_server import Clip, en_clips, read_wav, start_server, tts_params

N_REQUESTS = 20


def _distinct_references(workspace, voices) -> list[Clip]:
    """N_REQUESTS different 3.2 s reference clips, cut from the test voice's clips at different offsets.

    (Short clips keep the test fast; with the untrained tiny models the transcript need not match exactly.)
    """
    sources = en_clips(voices)
    folder = workspace / "refs"
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(N_REQUESTS):
        source = sources[i % len(sources)]
        audio, rate = sf.read(source.path)
        start = (i // len(sources)) * rate // 2
        target = folder / f"ref_{i:02d}.wav"
        sf.write(target, audio[start : start + int(3.2 * rate)], rate)
        clips.append(Clip(target, source.text))
    return clips


def _call(url: str, index: int, params: dict, barrier: threading.Barrier | None = None) -> requests.Response:
    if barrier is not None:
        barrier.wait(30)
    if index % 2:  # half the clients use GET, half POST
        return requests.post(f"{url}/tts", json=params, timeout=300)
    return requests.get(f"{url}/tts", params=params, timeout=300)


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_concurrency")
    refs = _distinct_references(workspace, voices)
    yield workspace, refs, (tiny_s1_ckpt, tiny_s2_pth, golden)


def test_concurrent_requests_each_get_their_own_voice(env):
    workspace, refs, (s1, s2, golden) = env
    server = start_server(workspace, s1, s2, golden, queue_size=N_REQUESTS)
    try:
        params = [tts_params(ref, seed=100 + i) for i, ref in enumerate(refs)]
        expected = []
        for i, p in enumerate(params):  # one at a time first: what each request must get back
            r = _call(server.url, i, p)
            assert r.status_code == 200, r.text
            expected.append(read_wav(r.content)[0].tolist())
        assert len({tuple(e) for e in expected}) == N_REQUESTS  # 20 different voices, so a mix-up would show

        barrier = threading.Barrier(N_REQUESTS)
        with ThreadPoolExecutor(N_REQUESTS) as pool:
            answers = list(pool.map(lambda i: _call(server.url, i, params[i], barrier), range(N_REQUESTS)))
        assert [a.status_code for a in answers] == [200] * N_REQUESTS
        for i, answer in enumerate(answers):
            assert read_wav(answer.content)[0].tolist() == expected[i], f"request {i} got another voice"
    finally:
        server.stop()


def test_a_full_queue_answers_503_and_the_server_lives_on(env):
    workspace, refs, (s1, s2, golden) = env
    server = start_server(workspace, s1, s2, golden, queue_size=1)
    try:
        text = "One small step. Another small step. And one more step."
        barrier = threading.Barrier(N_REQUESTS)
        with ThreadPoolExecutor(N_REQUESTS) as pool:
            answers = list(
                pool.map(lambda i: _call(server.url, i, tts_params(refs[i], text=text), barrier), range(N_REQUESTS))
            )
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 503}, codes
        assert 1 <= codes.count(200) < N_REQUESTS
        for answer in answers:
            if answer.status_code == 503:
                assert "busy" in answer.json()["message"] and answer.headers["retry-after"]
            else:
                assert read_wav(answer.content)[1] == 32000
        after = _call(server.url, 0, tts_params(refs[0]))
        assert after.status_code == 200
        status = requests.get(server.url + "/", timeout=30).json()["queue"]
        assert status == {"waiting": 0, "busy": False, "limit": 1}
    finally:
        server.stop()
