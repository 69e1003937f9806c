"""The memory-mapped weights cache of the GPT and SoVITS files (studio.models.weights_cache).

Real official-format files (the tiny goldens, copied to tmp: the golden folder is never written), real
safetensors caches. What a user relies on: a model loaded through the cache is the model of the original, bit
for bit; its weights stay backed by the cache file; an edited original is never shadowed by an old cache; a
damaged cache is refused by name and rebuilt; a cache that cannot be written never stops a load.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.models import weights_cache
from studio.models.sovits.checkpoint import load_sovits
from studio.models.text2semantic_checkpoint import load_text2semantic, save_text2semantic_official
from studio.models.weights_cache import WeightsCacheError, cache_candidates, read_cache

LOADERS = {"gpt": load_text2semantic, "sovits": load_sovits}


@pytest.fixture
def originals(tmp_path: Path, golden: Path, tiny_s2_pth: Path) -> dict[str, Path]:
    """Private copies of the tiny GPT and SoVITS files (the tests edit and damage them and their caches)."""
    folder = tmp_path / "models"
    folder.mkdir()
    return {
        "gpt": Path(shutil.copy(golden / "tiny_s1.ckpt", folder / "tiny_s1.ckpt")),
        "sovits": Path(shutil.copy(tiny_s2_pth, folder / "tiny_s2G.pth")),
    }


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "user_cache"))
    monkeypatch.setenv("STUDIO_WEIGHTS_CACHE", "user")
    return tmp_path / "user_cache"


def the_cache(original: Path) -> Path:
    found = [p for p in cache_candidates(original) if p.is_file()]
    assert len(found) == 1, found
    return found[0]


def assert_same_model(a, b) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key
    assert a[1:] == b[1:]  # config, info record (and the SoVITS version): unchanged


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of ``path`` mapped into this process (Linux /proc/self/maps)."""
    ranges = []
    target = str(path.resolve())
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == target:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


@pytest.mark.parametrize("kind", ["gpt", "sovits"])
def test_cached_model_is_the_original_bit_for_bit_and_file_backed(originals, kind):
    load, original = LOADERS[kind], originals[kind]
    plain = load(original)
    built = load(original, cache=True)  # first use: writes the cache, then maps it
    cache = the_cache(original)
    mapped = load(original, cache=True)  # later use: maps the existing cache, the original is not unpickled
    assert_same_model(plain, built)
    assert_same_model(plain, mapped)
    assert mapped.info.path == original  # records name the original, not the cache
    if not Path("/proc/self/maps").is_file():
        pytest.skip("no /proc/self/maps to see mappings on this system")
    ranges = mapped_ranges(cache)
    params = list(mapped.model.parameters())
    inside = [p for p in params if any(lo <= p.data_ptr() < hi for lo, hi in ranges)]
    assert ranges and len(inside) == len(params), "parameters must be views of the mapped cache file"


@pytest.mark.parametrize("kind", ["gpt", "sovits"])
def test_cache_gives_the_same_outputs(originals, kind):
    load, original = LOADERS[kind], originals[kind]
    plain, cached = load(original), load(original, cache=True)
    torch.manual_seed(0)
    with torch.inference_mode():
        if kind == "gpt":  # teacher-forced logits over [text ; semantic] (B, S, V)
            cfg = plain.config
            phones = torch.randint(0, cfg.phoneme_vocab_size, (1, 9))  # (B, T_text)
            bert = torch.randn(1, cfg.bert_dim, 9)  # (B, 1024, T_text)
            semantic = torch.randint(0, cfg.vocab_size - 1, (1, 6))  # (B, T_sem)
            outs = [m.model(phones, bert, semantic) for m in (plain, cached)]
        else:
            ssl = torch.randn(1, plain.model.ssl_proj.in_channels, 40)  # (B, 768, T_ssl)
            outs = [m.model.extract_latent(ssl) for m in (plain, cached)]
    assert torch.equal(outs[0], outs[1])


def test_beside_the_original_when_its_folder_is_writable(originals, own_cache_dir, monkeypatch):
    monkeypatch.setenv("STUDIO_WEIGHTS_CACHE", "auto")
    original = originals["gpt"]
    load_text2semantic(original, cache=True)
    assert (original.parent / f".{original.name}.studio.safetensors").is_file()
    assert not (own_cache_dir / "weights").exists()


def test_in_the_user_cache_folder_named_by_the_path(originals, own_cache_dir):
    load_sovits(originals["sovits"], cache=True)
    cached = list((own_cache_dir / "weights").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("-tiny_s2G.pth.studio.safetensors")
    assert not any(p.name.endswith(".studio.safetensors") for p in originals["sovits"].parent.iterdir())


def test_off_writes_nothing(originals, own_cache_dir, monkeypatch):
    monkeypatch.setenv("STUDIO_WEIGHTS_CACHE", "off")
    assert_same_model(load_text2semantic(originals["gpt"]), load_text2semantic(originals["gpt"], cache=True))
    assert not own_cache_dir.exists()


def test_an_edited_original_rebuilds_its_stale_cache(originals, caplog):
    original = originals["gpt"]
    first = load_text2semantic(original, cache=True)
    old_cache = the_cache(original).read_bytes()
    with torch.no_grad():
        first.model.ar_predict_layer.weight.add_(0.5)  # a fine-tune saved over the same file
    save_text2semantic_official(first.model, first.info.config, original, "GPT-e2")
    with caplog.at_level(logging.INFO, logger="studio.models.weights_cache"):
        again = load_text2semantic(original, cache=True)
    assert "changed since its weights cache" in caplog.text
    assert_same_model(load_text2semantic(original), again)
    assert again.info.info == "GPT-e2"
    assert the_cache(original).read_bytes() != old_cache


def test_a_touched_original_is_stale_too(originals):
    original = originals["sovits"]
    load_sovits(original, cache=True)
    cache = the_cache(original)
    stat = original.stat()
    os.utime(original, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert read_cache(cache, original, "sovits") is None  # stale: never used as if it were current
    load_sovits(original, cache=True)
    assert read_cache(cache, original, "sovits") is not None


@pytest.mark.parametrize("kind", ["gpt", "sovits"])
def test_a_truncated_cache_is_refused_by_name_and_rebuilt(originals, kind, caplog):
    load, original = LOADERS[kind], originals[kind]
    load(original, cache=True)
    cache = the_cache(original)
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    with pytest.raises(WeightsCacheError) as refused:
        read_cache(cache, original, kind)
    assert str(cache) in str(refused.value) and "damaged" in str(refused.value)
    with caplog.at_level(logging.WARNING):
        loaded = load(original, cache=True)
    assert str(cache) in caplog.text
    assert_same_model(load(original), loaded)
    assert read_cache(cache, original, kind) is not None  # rebuilt, valid again


def test_a_foreign_safetensors_file_is_refused(originals):
    original = originals["gpt"]
    load_text2semantic(original, cache=True)
    cache = the_cache(original)
    save_file({"x": torch.zeros(3)}, str(cache))  # a safetensors file without our metadata
    with pytest.raises(WeightsCacheError, match="not a SoVITS Studio weights cache"):
        read_cache(cache, original, "gpt")
    assert_same_model(load_text2semantic(original), load_text2semantic(original, cache=True))


def test_a_cache_of_the_other_model_is_refused(originals):
    gpt_cache = (load_text2semantic(originals["gpt"], cache=True), the_cache(originals["gpt"]))[1]
    load_sovits(originals["sovits"], cache=True)
    sovits_cache = the_cache(originals["sovits"])
    shutil.copy(gpt_cache, sovits_cache)
    with pytest.raises(WeightsCacheError, match="'gpt' model, not the 'sovits'"):
        read_cache(sovits_cache, originals["sovits"], "sovits")
    assert_same_model(load_sovits(originals["sovits"]), load_sovits(originals["sovits"], cache=True))


@pytest.mark.parametrize("kind", ["gpt", "sovits"])
def test_a_cache_missing_a_weight_is_refused_and_rebuilt(originals, kind, caplog):
    from safetensors import safe_open

    load, original = LOADERS[kind], originals[kind]
    load(original, cache=True)
    cache = the_cache(original)
    with safe_open(str(cache), framework="pt") as handle:
        meta = handle.metadata()
        tensors = {k: handle.get_tensor(k).clone() for k in list(handle.keys())[1:]}  # one weight dropped
    save_file(tensors, str(cache), metadata=meta)  # well-formed, fresh, ours, but incomplete
    with caplog.at_level(logging.WARNING):
        loaded = load(original, cache=True)
    assert str(cache) in caplog.text and "missing" in caplog.text
    assert_same_model(load(original), loaded)


def test_an_unwritable_cache_place_still_loads_the_original(originals, own_cache_dir, caplog):
    own_cache_dir.parent.mkdir(parents=True, exist_ok=True)
    own_cache_dir.write_text("a file where the cache folder should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        loaded = load_sovits(originals["sovits"], cache=True)
    assert "could not write a weights cache" in caplog.text
    assert_same_model(load_sovits(originals["sovits"]), loaded)


def test_a_bad_original_is_reported_as_before(originals):
    from studio.errors import CheckpointError

    original = originals["gpt"]
    original.write_bytes(original.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_text2semantic(original, cache=True)
    assert not [p for p in cache_candidates(original) if p.exists()]


def test_synthesis_through_the_cache_is_bit_identical(tiny_pretrained, voices, tmp_path):
    import csv

    from studio.inference.requests import SynthesisRequest
    from studio.pretrained import PretrainedAssets
    from studio.services.synthesis import SynthesisService

    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    request = SynthesisRequest(
        text="Good morning, lovely weather.", lang="en", reference=voices / "en_joe" / row["file"],
        ref_text=row["text"], ref_lang="en", seed=7, max_tokens_per_sentence=30,
    )  # fmt: skip
    audio = [
        SynthesisService(PretrainedAssets(tiny_pretrained), device="cpu", weights_cache=flag).synthesize(request).audio
        for flag in (False, True, True)
    ]
    np.testing.assert_array_equal(audio[0], audio[1])
    np.testing.assert_array_equal(audio[0], audio[2])
    assert list((Path(os.environ["STUDIO_CACHE_DIR"]) / "weights").glob("*.studio.safetensors"))
    assert weights_cache.cache_mode() == "user"
