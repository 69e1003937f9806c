"""Continuous batching in the server: concurrent requests share GPT decoding steps, yet each gets exactly the
audio it gets alone (fp32, same seed); a cancelled request leaves the batch without disturbing the others."""

from __future__ import annotations

import asyncio
import copy
import inspect
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import torch
from api_server import RunningServer, en_clips, make_workspace, read_wav, tiny_settings, tts_params
from gpt_inputs import random_sentence

from studio.api.queue import InferenceQueue
from studio.inference.batching import GenerationCancelled, TokenBatcher, cancellation
from studio.models.generate import generate_semantic
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.services.synthesis import SynthesisService

TEXTS = [
    "Hello there. How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "One. Two. Three.",
    "Some people like tea, others prefer coffee in the morning.",
    "Good night.",
    "We will meet again tomorrow at noon, near the old bridge.",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory, voices, golden, tiny_s1_ckpt, tiny_s2_pth):
    workspace = tmp_path_factory.mktemp("ws_batching")
    refs = make_workspace(workspace, en_clips(voices), len(TEXTS))
    # fp32: the mode in which a batched request must equal its lone self exactly (other modes: their tolerance)
    exact = {"precision": "fp32"} if "precision" in inspect.signature(SynthesisService).parameters else {}
    service = SynthesisService(
        device="cpu", hubert_dir=golden / "hf_tiny_hubert", bert_dir=golden / "hf_tiny_bert", **exact
    )
    yield workspace, refs, (tiny_s1_ckpt, tiny_s2_pth, golden), service


def start_server(env, **overrides) -> RunningServer:
    workspace, _, (s1, s2, golden), service = env
    return RunningServer(tiny_settings(workspace, s1, s2, golden, **overrides), service).start()


def _post(url: str, params: dict, barrier: threading.Barrier | None = None) -> requests.Response:
    if barrier is not None:
        barrier.wait(30)
    return requests.post(f"{url}/tts", json=params, timeout=300)


def test_concurrent_requests_are_batched_and_sound_as_alone(env):
    refs = env[1]
    params = [
        tts_params(refs[i % len(refs)], text=text, seed=7 + i, top_k=5 + 3 * i, temperature=0.8 + 0.1 * i)
        for i, text in enumerate(TEXTS)
    ]
    alone = start_server(env, max_batch=1, max_tokens_per_sentence=60)
    try:
        assert alone.app.state.engine.batcher is None
        expected = []
        for p in params:  # one at a time, through the unbatched path
            r = _post(alone.url, p)
            assert r.status_code == 200, r.text
            expected.append(read_wav(r.content)[0].tolist())
    finally:
        alone.stop()
    assert len({tuple(e) for e in expected}) == len(TEXTS)

    batched = start_server(env, max_batch=8, max_tokens_per_sentence=60)
    try:
        barrier = threading.Barrier(len(TEXTS))
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            answers = list(pool.map(lambda p: _post(batched.url, p, barrier), params))
        stats = batched.app.state.engine.batcher.stats
    finally:
        batched.stop()
    assert [a.status_code for a in answers] == [200] * len(TEXTS)
    for i, answer in enumerate(answers):
        assert read_wav(answer.content)[0].tolist() == expected[i], f"request {i} sounds different in a batch"
    assert stats.peak_rows >= 2, "the concurrent requests never shared a decoding step"


@pytest.fixture(scope="module")
def gpt(tiny_s1_ckpt):
    return load_text2semantic(tiny_s1_ckpt).model.float().eval()


def _alone_tokens(model, seed: int, sentence, max_steps: int) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return generate_semantic(model, *sentence, generator=gen, max_steps=max_steps).tokens.tolist()


def test_a_cancelled_request_leaves_the_batch_and_two_voices_batch_apart(gpt):
    other_voice = copy.deepcopy(gpt)  # different weights: another voice, which needs its own batch
    with torch.no_grad():
        for p in other_voice.parameters():
            p.mul_(1.01)
    models = [gpt, other_voice, gpt, gpt, other_voice]
    locks = {id(gpt): threading.RLock(), id(other_voice): threading.RLock()}
    sentences = [random_sentence(m, 50 + i, 6 + 5 * i, 3 + 2 * i) for i, m in enumerate(models)]
    steps = [90, 70, 200, 60, 50]
    expected = [
        _alone_tokens(m, 50 + i, s, n) for i, (m, s, n) in enumerate(zip(models, sentences, steps, strict=True))
    ]
    batcher = TokenBatcher(max_rows=3)  # fewer rows than gpt's requests: one waits for a free row
    gone = threading.Event()
    victim = 2

    def call(i: int):
        gen = torch.Generator().manual_seed(50 + i)
        hook = (lambda _t, step: gone.set() if step == 20 else None) if i == victim else None
        with cancellation(gone.is_set if i == victim else lambda: False):
            return batcher.generate(
                models[i], *sentences[i], lock=locks[id(models[i])], generator=gen, max_steps=steps[i], on_token=hook
            )

    with ThreadPoolExecutor(len(models)) as pool:
        futures = [pool.submit(call, i) for i in range(len(models))]
        for i, future in enumerate(futures):
            if i == victim:
                with pytest.raises(GenerationCancelled):
                    future.result(60)
            else:
                assert future.result(60).tokens.tolist() == expected[i], f"request {i} was disturbed"
    assert batcher.stats.cancelled == 1 and batcher.stats.peak_rows >= 2
    assert batcher.rows == 0


def test_the_queue_runs_up_to_max_running_jobs_and_an_exclusive_one_alone():
    log: list[tuple[str, int]] = []
    state = {"running": 0, "peak": 0}
    guard = threading.Lock()

    def job(name: str, seconds: float = 0.2):
        def work():
            with guard:
                state["running"] += 1
                state["peak"] = max(state["peak"], state["running"])
                log.append((name, state["running"]))
            time.sleep(seconds)
            with guard:
                state["running"] -= 1
            yield name

        return work

    async def main():
        q = InferenceQueue(10, max_running=3)
        jobs = [q.submit(job(f"a{i}")) for i in range(4)]
        jobs.append(q.submit(job("swap"), exclusive=True))
        jobs += [q.submit(job(f"b{i}")) for i in range(2)]
        names = [await j.next() for j in jobs]
        q.stop()
        return names

    names = asyncio.run(main())
    assert names == ["a0", "a1", "a2", "a3", "swap", "b0", "b1"]
    assert state["peak"] == 3
    assert ("swap", 1) in log  # it ran alone
    order = [name for name, _ in log]
    assert order.index("swap") > max(order.index(f"a{i}") for i in range(4))
    assert order.index("swap") < min(order.index(f"b{i}") for i in range(2))
