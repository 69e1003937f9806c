"""The GPT model, its KV cache and its checkpoint files."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import spec_dir
from golden_utils import assert_close
from s1_golden_cases import resolve, runs, sampling_tensors

from studio.errors import CheckpointError
from studio.models.kv_cache import KVCache
from studio.models.text2semantic import PRESETS, Text2SemanticConfig, Text2SemanticModel, sine_table
from studio.models.text2semantic_checkpoint import (
    PREFIX,
    load_text2semantic,
    save_text2semantic_official,
)

KEYS_DIR = spec_dir() / "state_dict_keys"


def _key_table(name: str) -> dict[str, list[int]]:
    rows = (KEYS_DIR / name).read_text(encoding="utf-8").splitlines()[1:]
    return {r.split("\t")[0]: json.loads(r.split("\t")[1]) for r in rows if r.strip()}


@pytest.fixture(scope="module")
def loaded(tiny_s1_ckpt):
    return load_text2semantic(tiny_s1_ckpt)


# ---- architecture -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "table", "config_file"),
    [("v2", "s1_official_v2_state_dict.tsv", "s1_official_v2_config.json"), ("tiny", "s1_tiny_state_dict.tsv", None)],
)
def test_state_dict_matches_upstream_tables(preset, table, config_file):
    with torch.device("meta"):
        model = Text2SemanticModel.from_name(preset)
    ours = {PREFIX + k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == _key_table(table)
    assert list(ours) == list(_key_table(table))  # same order as upstream writes them
    if config_file:
        stored = json.loads((KEYS_DIR / config_file).read_text(encoding="utf-8"))
        stored = stored.get("config", stored)
        assert Text2SemanticConfig.from_checkpoint_config(stored) == Text2SemanticConfig.from_name(preset)


def test_official_parameter_count():
    with torch.device("meta"):
        v2 = Text2SemanticModel.from_name("v2")
        v1 = Text2SemanticModel.from_name("v1")
    assert sum(p.numel() for p in v2.parameters()) == 77_606_402  # SPEC §5.1
    assert sum(p.numel() for p in v1.parameters()) == 77_493_762  # SPEC §11
    assert len(list(v2.buffers())) == 2 and not any("table" in k for k in v2.state_dict())


@pytest.mark.parametrize("entry", runs()["sampling"]["pe_tables"], ids=lambda e: e["key"])
def test_positional_table_matches_upstream(golden, entry):
    gold = sampling_tensors(golden)[entry["key"]]
    assert_close(sine_table(entry["rows"], entry["dim"]), gold, what=entry["key"])
    layer = Text2SemanticModel(Text2SemanticConfig(embedding_dim=entry["dim"], hidden_dim=entry["dim"], n_layer=0))
    grown = layer.ar_text_position.rows(layer.config.max_positions + 5, 3)  # extended on demand, same formula
    assert torch.allclose(grown, sine_table(layer.config.max_positions + 8, entry["dim"])[-3:])


def test_loader_reads_the_official_export(loaded, tiny_s1_ckpt):
    model, config, info = loaded
    raw = torch.load(tiny_s1_ckpt, map_location="cpu", weights_only=True)
    assert config == Text2SemanticConfig.from_checkpoint_config(raw["config"])
    assert info.version == ("v1" if raw["config"]["model"]["phoneme_vocab_size"] == 512 else "v2")
    assert info.kind == "export" and info.info == raw["info"] and info.stored_dtype == torch.float16
    assert not model.training
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, raw["weight"][PREFIX + key].float()), key


# ---- cached decoding == full forward ----------------------------------------------------------------------
def test_prefill_and_decode_steps_equal_full_forward(loaded):
    model = loaded.model
    x, bert, prompt = resolve("s1_in_all_phone_ids"), resolve("s1_in_bert"), resolve("s1_in_prompt_semantic")
    continuation = torch.randint(0, 1024, (1, 6), generator=torch.Generator().manual_seed(0))
    sem = torch.cat([prompt, continuation], dim=1)
    n_text, n_prompt = x.shape[1], prompt.shape[1]
    with torch.no_grad():
        full = model(x, bert, sem)  # (1, S, V)
        cache = KVCache.for_model(model, 1, n_text + sem.shape[1])
        stepped = [model.prefill(model.embed_text(x, bert), prompt, cache)]
        for j in range(continuation.shape[1] - 1):
            stepped.append(model.decode_step(continuation[:, j : j + 1], n_prompt + j, cache))
    expected = full[0, n_text + n_prompt - 1 : -1]
    assert_close(torch.cat(stepped), expected, what="cached vs full logits")
    assert cache.length == n_text + sem.shape[1] - 1


def test_left_padding_in_a_batch_changes_nothing(loaded):
    model = loaded.model
    x, bert, prompt = resolve("s1_in_all_phone_ids"), resolve("s1_in_bert"), resolve("s1_in_prompt_semantic")
    short = 7
    with torch.no_grad():
        alone_cache = KVCache.for_model(model, 1, short + prompt.shape[1] + 2)
        alone = model.prefill(model.embed_text(x[:, :short], bert[:, :, :short]), prompt, alone_cache)
        alone_next = model.decode_step(prompt[:, -1:], prompt.shape[1], alone_cache)
        emb_long = model.embed_text(x, bert)[0]
        emb_short = model.embed_text(x[:, :short], bert[:, :, :short])[0]
        pad = x.shape[1] - short
        emb = torch.stack([emb_long, torch.nn.functional.pad(emb_short, (0, 0, pad, 0))])
        padding = torch.zeros(2, x.shape[1], dtype=torch.bool)
        padding[1, :pad] = True
        cache = KVCache.for_model(model, 2, x.shape[1] + prompt.shape[1] + 2)
        both = model.prefill(emb, prompt.expand(2, -1), cache, text_padding=padding)
        both_next = model.decode_step(prompt[:, -1:].expand(2, -1), prompt.shape[1], cache)
        cache.keep(torch.tensor([1]))
        kept_next = model.decode_step(prompt[:, -1:], prompt.shape[1] + 1, cache)
        alone_next2 = model.decode_step(prompt[:, -1:], prompt.shape[1] + 1, alone_cache)
    assert_close(both[1], alone[0], what="padded prefill")
    assert_close(both_next[1], alone_next[0], what="padded decode step")
    assert_close(kept_next[0], alone_next2[0], what="after removing a finished row")


def test_kv_cache_reset_and_overflow(loaded):
    model = loaded.model
    x, bert = resolve("s1_in_all_phone_ids"), resolve("s1_in_bert")
    cache = KVCache.for_model(model, 1, x.shape[1])
    with torch.no_grad():
        first = model.prefill(model.embed_text(x, bert), None, cache)
        again = model.prefill(model.embed_text(x, bert), None, cache)  # prefill resets the cache
        assert torch.equal(first, again)
        with pytest.raises(ValueError, match="KV cache full"):
            model.decode_step(torch.zeros(1, 1, dtype=torch.long), 0, cache)
    cache.reset()
    assert cache.length == 0


# ---- checkpoint files -------------------------------------------------------------------------------------
def test_save_official_round_trip(loaded, tiny_s1_ckpt, tmp_path):
    model, _, info = loaded
    out = save_text2semantic_official(model, info.config, tmp_path / "voice-e1.ckpt", info.info)
    assert out.read_bytes()[:2] == b"PK"
    assert [p.name for p in tmp_path.iterdir()] == ["voice-e1.ckpt"]  # no temp file left behind
    ours = torch.load(out, map_location="cpu", weights_only=True)
    theirs = torch.load(tiny_s1_ckpt, map_location="cpu", weights_only=True)
    assert list(ours) == ["weight", "config", "info"] == list(theirs)
    assert type(ours["weight"]) is type(theirs["weight"])
    assert list(ours["weight"]) == list(theirs["weight"])
    for key, value in theirs["weight"].items():
        assert ours["weight"][key].dtype == torch.float16 and torch.equal(ours["weight"][key], value), key
    assert ours["config"] == theirs["config"] and ours["info"] == theirs["info"]
    reloaded = load_text2semantic(out)
    assert reloaded.config == loaded.config


def test_lightning_checkpoint_without_config(loaded, tmp_path):
    model = loaded.model
    path = tmp_path / "epoch=1.ckpt"
    torch.save({"state_dict": {PREFIX + k: v for k, v in model.state_dict().items()}, "epoch": 1}, path)
    heads = {c.hidden_dim: c.n_head for c in PRESETS.values()}
    if model.config.hidden_dim in heads:  # sizes come from the shapes, heads from the preset of that width
        got = load_text2semantic(path)
        assert got.info.kind == "lightning" and got.config.n_head == heads[model.config.hidden_dim]
        assert got.config.n_layer == model.config.n_layer
    else:
        with pytest.raises(CheckpointError, match="heads is unknown"):
            load_text2semantic(path)


def _write(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_missing_truncated_and_garbage_files(tiny_s1_ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_text2semantic(tmp_path / "nope.ckpt")
    data = tiny_s1_ckpt.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_text2semantic(tmp_path / "cut.ckpt")
    assert "cut.ckpt" in str(err.value)
    (tmp_path / "noise.ckpt").write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="noise.ckpt is not a PyTorch checkpoint"):
        load_text2semantic(tmp_path / "noise.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.ckpt is empty"):
        load_text2semantic(tmp_path / "empty.ckpt")
    unsafe = _write(tmp_path / "unsafe.ckpt", {"weight": {}, "config": argparse.Namespace(a=1)})
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_text2semantic(unsafe)


def test_sovits_file_given_as_gpt(tiny_s2_pth, tmp_path):
    with pytest.raises(CheckpointError, match="SoVITS"):
        load_text2semantic(tiny_s2_pth)
    pro = tmp_path / "v2pro.pth"
    shutil.copyfile(tiny_s2_pth, pro)
    with open(pro, "r+b") as f:
        f.write(b"05")  # upstream's v2Pro header
    with pytest.raises(CheckpointError, match="SoVITS v2Pro"):
        load_text2semantic(pro)
    plain = _write(tmp_path / "s2_weights.pth", {"weight": {"enc_p.proj.weight": torch.zeros(2, 2)}})
    with pytest.raises(CheckpointError, match="SoVITS"):
        load_text2semantic(plain)


def test_missing_keys_and_wrong_shapes(tiny_s1_ckpt, tmp_path):
    raw = torch.load(tiny_s1_ckpt, map_location="cpu", weights_only=True)
    dropped = dict(raw, weight={k: v for k, v in raw["weight"].items() if "ar_predict_layer" not in k})
    with pytest.raises(CheckpointError, match="missing 1 GPT weight.*ar_predict_layer"):
        load_text2semantic(_write(tmp_path / "dropped.ckpt", dropped))
    other = 512 if raw["config"]["model"]["phoneme_vocab_size"] != 512 else 732
    config = dict(raw["config"], model=dict(raw["config"]["model"], phoneme_vocab_size=other))
    with pytest.raises(CheckpointError, match="ar_text_embedding.*shape"):
        load_text2semantic(_write(tmp_path / "shape.ckpt", dict(raw, config=config)))
    with pytest.raises(CheckpointError, match="'weight'.*'state_dict'"):
        load_text2semantic(_write(tmp_path / "other.ckpt", {"something": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_text2semantic(_write(tmp_path / "list.ckpt", [torch.zeros(1)]))
