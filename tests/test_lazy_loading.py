"""Load what is used when it is used: the Chinese BERT with the first Chinese text; a reference's HuBERT pass once.

Real tiny models (golden HuBERT, BERT, GPT, SoVITS), real reference clips, real synthesis. Observables: the
lazy BERT's ``loaded`` state and identity; calls of a real :class:`ContentEncoder` (a subclass that counts);
the audio itself.
"""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from studio.errors import MissingPretrainedError, StudioError
from studio.inference.reference_cache import ReferenceFeatureCache
from studio.inference.requests import SynthesisRequest
from studio.inference.synthesizer import EngineModels, Synthesizer
from studio.models.content_encoder import ContentEncoder
from studio.models.sovits.checkpoint import load_sovits
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.models.text_features import ChineseBertFeatures, LazyChineseBert
from studio.pretrained import PretrainedAssets
from studio.services.synthesis import SynthesisService


def en_clips(voices: Path, n: int) -> list[tuple[Path, str]]:
    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:n]
    return [(voices / "en_joe" / row["file"], row["text"]) for row in rows]


def english(reference: Path, ref_text: str, **extra) -> SynthesisRequest:
    fields = dict(text="Good morning, lovely weather.", lang="en", reference=reference, ref_text=ref_text,
                  ref_lang="en", seed=5, max_tokens_per_sentence=24)  # fmt: skip
    return SynthesisRequest(**{**fields, **extra})


# --------------------------------------------------------------------------------------------- Chinese BERT


def test_english_never_loads_the_chinese_bert_and_chinese_loads_it_once(tiny_pretrained, voices):
    service = SynthesisService(PretrainedAssets(tiny_pretrained), device="cpu")
    clip, text = en_clips(voices, 1)[0]
    service.synthesize(english(clip, text))
    synth = service.synthesizer()
    bert = synth.models.bert
    assert isinstance(bert, LazyChineseBert) and not bert.loaded
    # The tiny BERT's features are narrower than the GPT's 1024: Chinese text loads it, uses it, and is refused.
    with pytest.raises(StudioError, match="features but the GPT expects"):
        synth.text_features("今天天气很好。", "zh")
    assert bert.loaded
    model = bert.load()
    with pytest.raises(StudioError, match="features but the GPT expects"):
        service.synthesize(english(clip, text, text="你好。", lang="zh"))
    assert bert.load() is model  # loaded once, kept


def test_lazy_features_equal_the_eager_ones(golden):
    lazy = LazyChineseBert(golden / "hf_tiny_bert")
    eager = ChineseBertFeatures(golden / "hf_tiny_bert")
    text, word2ph = "今天天气很好", [2, 2, 2, 2, 2, 2]
    assert not lazy.loaded
    got = lazy.phone_features(text, word2ph)
    assert lazy.loaded and got.shape == (eager.dim, sum(word2ph))
    assert np.array_equal(got.numpy(), eager.phone_features(text, word2ph).numpy())


def test_concurrent_first_uses_load_one_model(golden):
    lazy = LazyChineseBert(golden / "hf_tiny_bert")
    got, start = [], threading.Barrier(4)

    def use() -> None:
        start.wait()
        got.append(lazy.load())

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is got[0] for m in got)


def test_an_incomplete_bert_folder_is_reported_before_any_chinese_text(golden, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(golden / "hf_tiny_bert", folder)
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(MissingPretrainedError, match="weight file"):
        LazyChineseBert(folder)


# ------------------------------------------------------------------------------------ reference HuBERT cache


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder per test: what one test encoded is no hit for the next."""
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CountingEncoder(ContentEncoder):
    """The real HuBERT content encoder, counting its passes."""

    calls = 0

    def encode(self, wav16k, **kwargs):
        CountingEncoder.calls += 1
        return super().encode(wav16k, **kwargs)


@pytest.fixture
def engine(golden, tiny_s2_pth):
    """A fresh :class:`Synthesizer` per call over the same tiny models and a counting HuBERT."""
    encoder = CountingEncoder(golden / "hf_tiny_hubert")
    gpt = load_text2semantic(golden / "tiny_s1.ckpt").model
    sovits, _, _, version = load_sovits(tiny_s2_pth)
    CountingEncoder.calls = 0

    def fresh(cache: ReferenceFeatureCache | None = None) -> Synthesizer:
        synth = Synthesizer(EngineModels(gpt=gpt, sovits=sovits, content_encoder=encoder, bert=None, version=version))
        if cache is not None:
            synth._conditioner.disk_cache = cache
        return synth

    return fresh


def test_a_repeated_reference_skips_hubert_in_a_new_synthesizer(engine, voices, tmp_path):
    clip, text = en_clips(voices, 1)[0]
    reference = Path(shutil.copy(clip, tmp_path / "ref.wav"))
    first = engine().synthesize(english(reference, text))
    assert CountingEncoder.calls == 1
    second = engine().synthesize(english(reference, text))  # a new voice load or process: no in-memory cache
    assert CountingEncoder.calls == 1
    np.testing.assert_array_equal(first.audio, second.audio)


def test_a_changed_file_at_the_same_path_is_encoded_again(engine, voices, tmp_path):
    import torch

    (clip_a, text_a), (clip_b, _) = en_clips(voices, 2)
    reference = Path(shutil.copy(clip_a, tmp_path / "ref.wav"))
    before = engine().reference_prompt(english(reference, text_a)).prompt_tokens
    shutil.copy(clip_b, reference)  # same path and transcript, other recording
    after = engine().reference_prompt(english(reference, text_a)).prompt_tokens
    assert CountingEncoder.calls == 2
    direct = engine().reference_prompt(english(clip_b, text_a)).prompt_tokens  # clip_b's own (cached) tokens
    assert torch.equal(after, direct) and not torch.equal(before, after)


def test_the_cache_matches_a_fresh_encoding_and_survives_damage(engine, voices, tmp_path):
    clip, text = en_clips(voices, 1)[0]
    cache = ReferenceFeatureCache(tmp_path / "refs")
    cold = engine(ReferenceFeatureCache(tmp_path / "other")).synthesize(english(clip, text))
    engine(cache).synthesize(english(clip, text))
    (entry,) = (tmp_path / "refs").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:40])  # damaged: ignored, encoded again, rewritten
    calls = CountingEncoder.calls
    warm = engine(cache).synthesize(english(clip, text))
    assert CountingEncoder.calls == calls + 1 and cache.misses == 2 and cache.hits == 0
    np.testing.assert_array_equal(cold.audio, warm.audio)
    hit = engine(cache).synthesize(english(clip, text))
    assert cache.hits == 1 and CountingEncoder.calls == calls + 1
    np.testing.assert_array_equal(cold.audio, hit.audio)
