"""The golden directory itself: its index matches its arrays, and every tensor upstream randomised in the tiny
checkpoints really reaches our models (a loader that silently dropped one would still pass some goldens)."""

from __future__ import annotations

import csv
import fnmatch
from pathlib import Path

import numpy as np
import torch
from golden_utils import load_json, load_npz

NPZ_FILES = ("golden_tensors.npz", "golden_sampling.npz", "golden_hf.npz")


def _index_rows(golden: Path) -> list[dict[str, str]]:
    with open(golden / "golden_tensors_index.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_index_describes_the_arrays(golden):
    arrays: dict[str, np.ndarray] = {}
    for name in NPZ_FILES:
        if (golden / name).is_file():
            arrays.update(load_npz(str(golden / name)))
    rows = _index_rows(golden)
    assert rows, "golden_tensors_index.tsv lists no arrays"
    for row in rows:
        assert row["name"] in arrays, f"{row['name']} is indexed but in no npz file"
        arr = arrays[row["name"]]
        assert list(arr.shape) == [int(x) for x in row["shape"].strip("[]").split(",") if x.strip()], row["name"]
        assert str(arr.dtype) == row["dtype"], row["name"]


def _state_dicts(golden: Path, tiny_s2_pth: Path) -> dict[str, tuple[dict, dict]]:
    """stage → (tensors stored in the file, our loaded model's state_dict), keys as in the file."""
    from studio.models.sovits import load_sovits
    from studio.models.sovits.checkpoint import read_sovits_file
    from studio.models.text2semantic_checkpoint import load_text2semantic

    s1_file = torch.load(golden / "tiny_s1.ckpt", map_location="cpu", weights_only=True)["weight"]
    s1_ours = {f"model.{k}": v for k, v in load_text2semantic(golden / "tiny_s1.ckpt").model.state_dict().items()}
    s2_file = read_sovits_file(tiny_s2_pth).weights
    s2_ours = load_sovits(tiny_s2_pth).model.state_dict()
    return {"s1": (s1_file, s1_ours), "s2": (s2_file, s2_ours)}


def test_every_randomised_tensor_reaches_our_models(golden, tiny_s2_pth):
    listing = load_json(golden / "tiny_models_randomisation.json")
    dicts = _state_dicts(golden, tiny_s2_pth)
    checked = 0
    for group, entries in listing.items():
        stored, ours = dicts[group.split("_")[0]]
        for pattern, rule in entries:
            glob = pattern.replace("...", "*")
            keys = [k for k in stored if fnmatch.fnmatchcase(k, glob)]
            assert keys, f"{group}: {pattern} ({rule}) matches no tensor in the checkpoint"
            for key in keys:
                assert key in ours, f"{key} is in the checkpoint but our model has no such tensor"
                theirs = stored[key].float()
                if theirs.numel() > 1:
                    assert not torch.all(theirs == theirs.flatten()[0]), f"{key} should not be constant"
                torch.testing.assert_close(ours[key].float(), theirs, rtol=0, atol=0, msg=f"{key} was not loaded")
                checked += 1
    assert checked >= sum(len(v) for v in listing.values())


def test_reference_wav_is_the_one_the_goldens_were_made_from(golden):
    """The HuBERT goldens start from this file: a changed copy would fail them for the wrong reason."""
    import hashlib

    import soundfile as sf

    ref = load_json(golden / "golden_hf_meta.json")["ref_wav_file"]
    path = golden / ref["name"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["sha256"]
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        ref["sample_rate"],
        ref["channels"],
        ref["subtype"],
        ref["frames"],
    )
