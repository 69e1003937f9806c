"""The Chinese BERT in a light precision is kept converted on disk: later loads never hold its fp32 weights,
give exactly the features of the first conversion, and a stale or damaged file is converted again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from memory_utils import resident_kib

from studio.models import weights_cache
from studio.models.precision import QUALITY_BOUNDS, Bf16Linear, Int8Linear, int8_available
from studio.models.precision_quality import relative_error
from studio.models.text_features import ChineseBertFeatures

MODES = ["bf16"] + (["int8"] if int8_available() else [])
TEXT, WORD2PH = "你好世界", [2, 2, 2, 2]


@pytest.fixture()
def bert_dir(golden: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "chinese-roberta-wwm-ext-large"
    shutil.copytree(golden / "hf_tiny_bert", folder)
    return folder


def _cache_of(folder: Path, mode: str) -> Path:
    weights = next(p for p in (folder / "model.safetensors", folder / "pytorch_model.bin") if p.is_file())
    return next(p for p in weights_cache.cache_candidates(weights, mode) if p.is_file())


@pytest.mark.parametrize("mode", MODES)
def test_second_load_comes_converted_and_equal(bert_dir, mode):
    exact = ChineseBertFeatures(bert_dir).phone_features(TEXT, WORD2PH)
    first = ChineseBertFeatures(bert_dir, precision=mode)
    assert not first.from_converted_cache
    light = first.phone_features(TEXT, WORD2PH)
    assert 0 < relative_error(exact, light) <= QUALITY_BOUNDS.features_rel_max
    second = ChineseBertFeatures(bert_dir, precision=mode)
    assert second.from_converted_cache
    kinds = {type(m) for m in second.model.modules()}
    assert (Int8Linear if mode == "int8" else Bf16Linear) in kinds and torch.nn.Linear not in kinds
    assert not any(t.is_meta for t in [*second.model.parameters(), *second.model.buffers()])
    assert torch.equal(second.phone_features(TEXT, WORD2PH), light)


def test_an_edited_original_is_converted_again(bert_dir):
    ChineseBertFeatures(bert_dir, precision="bf16")
    weights = next(p for p in (bert_dir / "model.safetensors", bert_dir / "pytorch_model.bin") if p.is_file())
    info = weights.stat()
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    again = ChineseBertFeatures(bert_dir, precision="bf16")
    assert not again.from_converted_cache
    assert ChineseBertFeatures(bert_dir, precision="bf16").from_converted_cache


def test_a_damaged_file_is_never_loaded(bert_dir, caplog):
    light = ChineseBertFeatures(bert_dir, precision="bf16").phone_features(TEXT, WORD2PH)
    cache = _cache_of(bert_dir, "bf16")
    cache.write_bytes(cache.read_bytes()[:200])  # truncated
    with caplog.at_level("WARNING"):
        again = ChineseBertFeatures(bert_dir, precision="bf16")
    assert not again.from_converted_cache and str(cache) in caplog.text
    assert torch.equal(again.phone_features(TEXT, WORD2PH), light)
    assert ChineseBertFeatures(bert_dir, precision="bf16").from_converted_cache  # rebuilt


@pytest.mark.skipif(not int8_available(), reason="no quantized int8 kernel in this PyTorch build")
def test_int8_layer_round_trip():
    torch.manual_seed(0)
    weight, bias = torch.randn(24, 16), torch.randn(24)
    layer = Int8Linear(weight, bias)
    q, scale, b = layer.unpacked()
    again = Int8Linear(None, b, quantized=(q, scale))
    x = torch.randn(3, 16)
    assert q.dtype == torch.int8 and torch.equal(layer(x), again(x))


@pytest.mark.skipif(not int8_available() or not Path("/proc/self/smaps").exists(), reason="int8 kernel; Linux")
def test_a_converted_int8_load_keeps_only_the_packed_copy(tmp_path):
    """Loading an int8 model from its converted file packs each matrix for the kernel; the file's pages it read
    do not stay resident beside the packed copy (the Chinese BERT's ~300 MB), and nothing is lost by that:
    the layers compute what they computed, and their int8 values read back unchanged."""
    from studio.models.converted_weights import load_converted, save_converted
    from studio.models.precision import convert_linears

    original = tmp_path / "big.bin"
    original.write_bytes(b"weights")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.LayerNorm(2048), torch.nn.Linear(2048, 1024))
    convert_linears(model, "int8")
    assert save_converted(original, "test", "int8", model)
    x = torch.randn(3, 1024)
    with torch.device("meta"):
        empty = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.LayerNorm(2048), torch.nn.Linear(2048, 1024))
    loaded = load_converted(original, "test", "int8", empty)
    assert loaded is not None and isinstance(loaded[0], Int8Linear)
    cache = _cache_of_file(original)
    int8_kib = 2 * 1024 * 2048 // 1024
    assert resident_kib(cache) < int8_kib // 4, "the file's int8 pages stayed resident"
    assert torch.equal(loaded(x), model(x))
    for fresh, first in ((loaded[0], model[0]), (loaded[2], model[2])):
        assert all(torch.equal(a, b) for a, b in zip(fresh.unpacked()[:2], first.unpacked()[:2], strict=True))


def _cache_of_file(original: Path) -> Path:
    return next(p for p in weights_cache.cache_candidates(original, "int8") if p.is_file())


def _plain_and_mapped(build, tmp_path: Path):
    """(a model, the same weights in a second copy whose parameters map a weights cache file — as the loaders
    give them —, the opened cache)."""
    torch.manual_seed(0)
    original = tmp_path / "model.pth"
    original.write_bytes(b"weights")
    plain = build().eval()
    hit = weights_cache.write_cache(original, "test", dict(plain.state_dict()), {})
    assert hit is not None
    mapped = build().eval()
    mapped.load_state_dict(hit.tensors, assign=True)
    return plain, mapped, hit


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux")
def test_a_prepared_decoder_lets_go_of_its_mapped_weights(tmp_path):
    """A decoder whose weights map the weights cache reads them once to fold them; those pages then leave
    resident memory (~60 MB at official size), and the plain (trainable) path still reads the same weights."""
    from studio.models.sovits.fast_decoder import prepare_generator
    from studio.models.sovits.generator import Generator

    first, dec, hit = _plain_and_mapped(lambda: Generator(96, (3, 7), ((1, 3), (1, 3)), (4, 4), 512, (8, 8)), tmp_path)
    x = torch.randn(1, 96, 20)
    expected = first(x)  # plain arithmetic, gradients on
    weights_kib = sum(p.numel() for p in dec.parameters()) * 4 // 1024
    prepare_generator(dec)
    assert resident_kib(hit.path) < weights_kib // 4, "the folded decoder's file pages stayed resident"
    assert torch.equal(dec(x), expected)  # with gradients on, the generator runs its own weights: read back
    with torch.inference_mode():
        assert ((dec(x) - expected).norm() / expected.norm()).item() < 1e-5  # the folded fast path


@pytest.mark.skipif(not int8_available() or not Path("/proc/self/smaps").exists(), reason="int8 kernel; Linux")
def test_converting_mapped_weights_lets_go_of_their_pages(tmp_path):
    """A model whose fp32 weights map the weights cache (the GPT as a voice loads) is converted layer by layer;
    each converted layer's fp32 pages leave resident memory, and the result equals converting a plain copy."""
    from studio.models.precision import convert_linears

    def build() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024))

    plain, mapped, hit = _plain_and_mapped(build, tmp_path)
    x = torch.randn(2, 1024)
    with torch.no_grad():
        mapped(x)  # every page read, as the quality check before a conversion reads them
    assert resident_kib(hit.path) > 2 * 1024 * 1024 * 4 // 1024 // 2
    convert_linears(mapped, "int8")
    convert_linears(plain, "int8")
    assert resident_kib(hit.path) < 1024, "the converted layers' fp32 pages stayed resident"
    assert torch.equal(mapped(x), plain(x))


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux")
def test_a_mapped_weight_written_in_place_keeps_its_values(tmp_path):
    """Adapters merged into a weight that maps the cache make its pages private data: releasing the file's pages
    never throws those values away (the untouched weight beside it is released)."""
    original = tmp_path / "voice.pth"
    original.write_bytes(b"weights")
    hit = weights_cache.write_cache(original, "test", {"a": torch.zeros(512, 1024), "b": torch.ones(512, 1024)}, {})
    assert hit is not None
    written, untouched = hit.tensors["a"], hit.tensors["b"]
    written.add_(3.0)  # in place, as merging a LoRA adapter does
    untouched.sum()  # read: its pages become resident, still the file's
    before = resident_kib(hit.path)
    dropped = weights_cache.release_pages([written, untouched])
    assert 0 < dropped <= untouched.numel() * 4 and resident_kib(hit.path) < before
    # (reading them back faults the untouched pages in from the file again)
    assert torch.equal(written, torch.full((512, 1024), 3.0)) and torch.equal(untouched, torch.ones(512, 1024))


@pytest.mark.skipif(not int8_available() or not Path("/proc/self/smaps").exists(), reason="int8 kernel; Linux")
def test_converting_from_the_original_file_lets_go_of_its_pages(tmp_path):
    """The Chinese BERT's first light load converts weights memory-mapped from the user's own checkpoint (not a
    cache of ours): each converted layer's pages of that file leave resident memory as it goes, so the first
    load never holds the whole fp32 model, and the result equals converting a plain copy."""
    from studio.models.precision import convert_linears

    def build() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024))

    torch.manual_seed(0)
    plain = build().eval()
    original = tmp_path / "pytorch_model.bin"
    torch.save(plain.state_dict(), original)
    mapped = build().eval()
    mapped.load_state_dict(torch.load(original, mmap=True, weights_only=True), assign=True)
    x = torch.randn(2, 1024)
    with torch.no_grad():
        mapped(x)  # every page read
    weights_kib = 2 * 1024 * 1024 * 4 // 1024
    assert resident_kib(original) > weights_kib // 2
    convert_linears(mapped, "int8", source=original)
    convert_linears(plain, "int8")
    assert resident_kib(original) < 1024, "the converted layers' pages of the original stayed resident"
    assert torch.equal(mapped(x), plain(x))


def test_the_cache_file_holds_every_tensor_as_given(tmp_path):
    """The cache is written tensor by tensor (never the whole model copied into one buffer first): every dtype,
    shape, view and empty tensor reads back equal, with the safetensors library itself too."""
    from safetensors.torch import load_file

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "f32": torch.randn(3, 5),
        "bf16": torch.randn(7).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "i8": torch.randint(-128, 127, (9,), dtype=torch.int8),
        "u8": torch.randint(0, 255, (2, 3), dtype=torch.uint8),
        "i64": torch.tensor([1, -2, 3]),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),  # not contiguous
        "shared": base[1],  # a view into the same storage as the one above
    }
    original = tmp_path / "model.pth"
    original.write_bytes(b"weights")
    hit = weights_cache.write_cache(original, "test", tensors, {"n": 1})
    assert hit is not None and hit.record == {"n": 1}
    on_disk = load_file(str(hit.path))
    for name, tensor in tensors.items():
        for read in (hit.tensors[name], on_disk[name]):
            assert read.dtype == tensor.dtype and read.shape == tensor.shape and torch.equal(read, tensor), name


def test_tensors_that_change_while_written_leave_no_cache(tmp_path, caplog):
    """Given as a function (called once for the layout, once for the bytes), tensors that differ between the two
    calls are refused: no cache file is left, and the caller keeps using the original."""
    original = tmp_path / "model.pth"
    original.write_bytes(b"weights")
    calls = []

    def source():
        calls.append(1)
        yield "w", torch.zeros(4 * len(calls))

    with caplog.at_level("WARNING"):
        assert weights_cache.write_cache(original, "test", source, {}) is None
    assert "changed while they were written" in caplog.text
    assert not list(tmp_path.glob("*.studio.safetensors*")) and not list(tmp_path.glob(".*.tmp"))
