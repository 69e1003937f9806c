"""The compute thread: whichever thread loads a voice or asks for speech (a UI worker, a server worker, the GPT batch
thread), the models run on one thread, so the CPU's OpenMP teams stay few and fast (studio.inference.compute_thread).
Results and errors reach the caller as if it had run the work itself."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from gpt_inputs import random_sentence

from studio.errors import ReferenceAudioError, StudioError
from studio.inference import compute_thread
from studio.inference.batching import TokenBatcher
from studio.models import text2semantic_checkpoint
from studio.models.generate import generate_semantic
from studio.pretrained import PretrainedAssets
from studio.services.synthesis import SynthesisService


def test_work_runs_on_the_compute_thread_and_results_and_errors_come_back():
    assert compute_thread.run(lambda a, b=0: (threading.current_thread().name, a + b), 2, b=3) == (
        compute_thread.THREAD_NAME,
        5,
    )
    with pytest.raises(StudioError, match="no such voice") as info:
        compute_thread.run(lambda: (_ for _ in ()).throw(StudioError("no such voice", hint="pick one")))
    assert info.value.hint == "pick one"
    # Work that is already there runs inline (no deadlock), and the thread outlives a failed job.
    nested = compute_thread.run(lambda: compute_thread.run(lambda: threading.current_thread().name))
    assert nested == compute_thread.THREAD_NAME
    assert not compute_thread.on_compute_thread()


def test_many_callers_share_the_one_thread():
    with ThreadPoolExecutor(4) as pool:
        names = set(pool.map(lambda _: compute_thread.run(lambda: threading.get_ident()), range(16)))
    assert len(names) == 1


def test_a_voice_loaded_on_one_thread_and_used_on_others_runs_its_models_on_the_compute_thread(
    tiny_pretrained, request_, monkeypatch, tmp_path
):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))  # the reference is encoded afresh
    seen: dict[str, set[str]] = {}

    def record(stage: str, fn):
        def wrapper(*args, **kwargs):
            seen.setdefault(stage, set()).add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        text2semantic_checkpoint,
        "load_text2semantic",
        record("load", text2semantic_checkpoint.load_text2semantic),
    )
    service = SynthesisService(PretrainedAssets(tiny_pretrained), device="cpu")
    with ThreadPoolExecutor(1, thread_name_prefix="loader") as loader:
        synth = loader.submit(service.synthesizer).result()
    models = synth.models
    monkeypatch.setattr(models.gpt, "prefill", record("gpt", models.gpt.prefill))
    monkeypatch.setattr(models.sovits, "decode", record("sovits", models.sovits.decode))
    monkeypatch.setattr(models.content_encoder, "encode", record("hubert", models.content_encoder.encode))

    with ThreadPoolExecutor(2, thread_name_prefix="worker") as workers:
        whole = workers.submit(service.synthesize, request_).result()
        streamed = workers.submit(lambda: list(service.stream(dataclasses.replace(request_, stream_tokens=8)))).result()
    assert set(seen) == {"load", "gpt", "sovits", "hubert"}
    assert all(names == {compute_thread.THREAD_NAME} for names in seen.values()), seen
    assert whole.duration_s > 0 and sum(len(c.audio) for c in streamed) > 0
    # The same request from the main thread gives the same audio.
    assert np.array_equal(service.synthesize(request_).audio, whole.audio)


def test_a_bad_reference_is_still_the_callers_clear_error(tiny_pretrained, request_, tmp_path):
    import soundfile as sf

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(32000 * 4, dtype=np.float32), 32000)
    service = SynthesisService(PretrainedAssets(tiny_pretrained), device="cpu")
    request = dataclasses.replace(request_, reference=silent)
    with ThreadPoolExecutor(1) as worker, pytest.raises(ReferenceAudioError):
        worker.submit(service.synthesize, request).result(120)


@pytest.fixture(scope="module")
def gpt(tiny_s1_ckpt):
    return text2semantic_checkpoint.load_text2semantic(tiny_s1_ckpt).model.float().eval()


def test_a_shared_batch_asked_for_on_the_compute_thread_decodes_alone_instead_of_waiting_forever(gpt):
    model, sentence = gpt, random_sentence(gpt, 3, 9, 4)
    alone = generate_semantic(model, *sentence, generator=torch.Generator().manual_seed(5), max_steps=40)
    batcher = TokenBatcher()
    outcome: dict = {}

    def ask() -> None:
        outcome["tokens"] = compute_thread.run(
            lambda: batcher.generate(
                model, *sentence, lock=threading.RLock(), generator=torch.Generator().manual_seed(5), max_steps=40
            )
        ).tokens.tolist()

    caller = threading.Thread(target=ask, daemon=True)
    caller.start()
    caller.join(120)
    assert not caller.is_alive(), "the compute thread waited for a batch that needs it"
    assert outcome["tokens"] == alone.tokens.tolist()


def test_a_shared_batch_steps_on_the_compute_thread_and_lets_other_work_in(gpt):
    model, sentence = gpt, random_sentence(gpt, 2, 7, 5)
    steps = 600
    alone = generate_semantic(model, *sentence, generator=torch.Generator().manual_seed(0), max_steps=steps)
    assert alone.stop_reason == "max_steps"  # a long sentence: other work arrives while it decodes
    batcher = TokenBatcher()
    threads: set[str] = set()
    decoding = threading.Event()

    def on_token(_token: int, step: int) -> None:
        threads.add(threading.current_thread().name)
        if step == 5:
            decoding.set()

    with ThreadPoolExecutor(1) as request:
        tokens = request.submit(
            batcher.generate,
            model,
            *sentence,
            lock=threading.RLock(),
            generator=torch.Generator().manual_seed(0),
            max_steps=steps,
            on_token=on_token,
        )
        assert decoding.wait(60)
        # Another request's work (e.g. its SoVITS decoding) gets the thread while the sentence is still decoding.
        rows_meanwhile = compute_thread.run(lambda: batcher.rows)
        result = tokens.result(300)
    assert rows_meanwhile == 1
    assert threads == {compute_thread.THREAD_NAME}
    assert result.tokens.tolist() == alone.tokens.tolist()
