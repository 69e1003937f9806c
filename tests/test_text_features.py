"""Chinese BERT features against golden_hf.npz / golden_hf_meta.json "bert_cases" (MANIFEST §4.2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import golden_dir
from golden_utils import assert_close, load_json, load_npz

from studio.errors import CheckpointError, MissingPretrainedError, TextError
from studio.models.text_features import ChineseBertFeatures, zeros_features


def _case_ids() -> list[str]:
    meta_file = golden_dir() / "golden_hf_meta.json"
    if not meta_file.is_file():
        return []
    return [case["id"] for case in load_json(meta_file)["bert_cases"]]


@pytest.fixture(scope="module")
def hf(golden):
    return load_npz(str(golden / "golden_hf.npz"))


@pytest.fixture(scope="module")
def cases(golden):
    return {case["id"]: case for case in load_json(golden / "golden_hf_meta.json")["bert_cases"]}


@pytest.fixture(scope="module")
def bert(golden):
    return ChineseBertFeatures(golden / "hf_tiny_bert")


@pytest.mark.parametrize("case_id", _case_ids())
def test_tokenizer_matches_golden(bert, hf, cases, case_id):
    case = cases[case_id]
    encoded = bert.tokenize(case["norm_text"])
    np.testing.assert_array_equal(encoded["input_ids"].numpy(), hf[f"bert_{case_id}_input_ids"])
    assert bert.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist()) == case["tokens"]
    assert encoded["token_type_ids"][0].tolist() == case["token_type_ids"]
    assert encoded["attention_mask"][0].tolist() == case["attention_mask"]


@pytest.mark.parametrize("case_id", _case_ids())
def test_hidden_states_match_golden(bert, hf, cases, case_id):
    ours = bert.hidden_states(cases[case_id]["norm_text"])
    assert_close(ours, hf[f"bert_{case_id}_dbg_hidden_states"], what=f"bert_{case_id}_dbg_hidden_states")


@pytest.mark.parametrize("case_id", _case_ids())
def test_char_features_match_golden(bert, hf, cases, case_id):
    case = cases[case_id]
    ours = bert.char_features(case["norm_text"])
    assert ours.shape == (len(case["norm_text"]), bert.dim)
    assert_close(ours, hf[f"bert_{case_id}_char_features"], what=f"bert_{case_id}_char_features")


@pytest.mark.parametrize("case_id", _case_ids())
def test_phone_features_match_golden(bert, hf, cases, case_id):
    case = cases[case_id]
    ours = bert.phone_features(case["norm_text"], case["word2ph"])
    assert ours.shape == (bert.dim, case["n_phones"]) and sum(case["word2ph"]) == case["n_phones"]
    assert_close(ours, hf[f"bert_{case_id}_phone_features"], what=f"bert_{case_id}_phone_features")


def test_phone_features_repeat_character_rows(bert, cases):
    case = next(iter(cases.values()))
    chars = bert.char_features(case["norm_text"])
    phones = bert.phone_features(case["norm_text"], case["word2ph"])
    column = 0
    for row, count in enumerate(case["word2ph"]):
        for _ in range(count):
            assert torch.equal(phones[:, column], chars[row])
            column += 1


def test_zeros_features():
    z = zeros_features(7)
    assert z.shape == (1024, 7) and z.dtype == torch.float32 and not z.any()
    assert zeros_features(3, dim=32).shape == (32, 3)


def test_word2ph_length_mismatch_is_a_text_error(bert, cases):
    case = next(iter(cases.values()))
    with pytest.raises(TextError, match="word2ph has"):
        bert.phone_features(case["norm_text"], case["word2ph"][:-1])


def test_text_that_is_not_one_token_per_character_is_refused(bert):
    with pytest.raises(TextError, match="one token per character"):
        bert.char_features("abc")  # a Latin word is a single (unknown) token
    with pytest.raises(TextError, match="empty"):
        bert.char_features("")


def test_text_longer_than_the_model_is_refused(bert, cases):
    char = next(iter(cases.values()))["norm_text"][0]
    limit = bert.model.sizes.max_position_embeddings
    with pytest.raises(TextError, match="at most"):
        bert.char_features(char * limit)


def test_missing_folder_names_folder_and_files(tmp_path):
    folder = tmp_path / "chinese-roberta-wwm-ext-large"
    with pytest.raises(MissingPretrainedError, match="chinese-roberta-wwm-ext-large.*pytorch_model.bin"):
        ChineseBertFeatures(folder)


def test_missing_weights_and_tokenizer(golden, tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    shutil.copy(golden / "hf_tiny_bert" / "config.json", folder / "config.json")
    with pytest.raises(MissingPretrainedError, match="a weight file, a tokenizer"):
        ChineseBertFeatures(folder)


def test_corrupt_or_incomplete_weights_are_checkpoint_errors(golden, tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    for src in (golden / "hf_tiny_bert").iterdir():
        shutil.copyfile(src, folder / src.name)  # contents only: the goldens are read-only
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    del state[next(k for k in state if k.endswith("attention.self.query.weight"))]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing"):
        ChineseBertFeatures(folder)
    data = (golden / "hf_tiny_bert" / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="Cannot load"):
        ChineseBertFeatures(folder)


def test_features_need_no_transformers_import(golden, cases):
    """The encoder is plain PyTorch: importing transformers' BERT code alone costs ~210 MB of memory."""
    import subprocess
    import sys

    case = next(iter(cases.values()))
    code = (
        "import sys; from studio.models.text_features import ChineseBertFeatures; "
        f"b = ChineseBertFeatures({str(golden / 'hf_tiny_bert')!r}); "
        f"b.phone_features({case['norm_text']!r}, {case['word2ph']!r}); "
        "print(sorted(m for m in sys.modules if m.startswith('transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
