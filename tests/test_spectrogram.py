"""Linear / mel spectrograms against the upstream goldens (golden_runs.json "spectrogram")."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest
import torch
from conftest import golden_dir
from golden_utils import assert_close, load_json, load_npz

from studio.audio.spectrogram import linear_spectrogram, mel_spectrogram, spectrogram_frames

# Upstream positional parameter order (after the waveform) of the two functions named in golden_runs.json.
_SIGNATURES = {
    "spectrogram_torch": ["n_fft", "sampling_rate", "hop_size", "win_size", "center"],
    "mel_spectrogram_torch": [
        "n_fft",
        "num_mels",
        "sampling_rate",
        "hop_size",
        "win_size",
        "fmin",
        "fmax",
        "center",
    ],
}


def _parse_call(call: str) -> dict:
    """``name(y, 2048, num_mels=128, …)`` → {"name": …, parameter: value} using the upstream parameter order."""
    match = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", call)
    assert match, f"cannot parse call {call!r}"
    name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
    params: dict = {"name": name}
    for position, arg in enumerate(args[1:]):  # args[0] is the waveform
        key, _, value = arg.rpartition("=")
        key = key.strip() or _SIGNATURES[name][position]
        params[key] = ast.literal_eval(value.strip())
    return params


def _middle(key: str, prefix: str, suffixes: tuple[str, ...]) -> str:
    core = key[len(prefix) :]
    for suffix in suffixes:
        if core.endswith(suffix):
            core = core[: -len(suffix)]
    return core.strip("_")


def _cases() -> list[tuple[str, str, str]]:
    """(output key, input key, "linear" | "mel") for every spectrogram golden output."""
    runs_file = golden_dir() / "golden_runs.json"
    if not runs_file.is_file():
        return []
    spec = load_json(runs_file)["spectrogram"]
    inputs = {_middle(k, "spec_in_", ("wav32k",)): k for k in spec["inputs"]}
    cases = []
    for out_key in spec["outputs"]:
        kind = "mel" if "mel" in out_key else "linear"
        middle = re.sub(r"_?(linear|mel\d*)$", "", out_key[len("spec_out_") :])
        assert middle in inputs, f"no input for {out_key} among {spec['inputs']}"
        cases.append((out_key, inputs[middle], kind))
    return cases


@pytest.mark.parametrize(("out_key", "in_key", "kind"), _cases())
def test_spectrogram_matches_golden(golden, out_key, in_key, kind):
    spec = load_json(golden / "golden_runs.json")["spectrogram"]
    tensors = load_npz(str(golden / "golden_tensors.npz"))
    wav = torch.from_numpy(tensors[in_key])  # (B, N)
    if kind == "mel":
        p = _parse_call(spec["mel"])
        assert p.get("center") is False
        ours = mel_spectrogram(
            wav,
            n_fft=p["n_fft"],
            n_mels=p["num_mels"],
            sample_rate=p["sampling_rate"],
            hop=p["hop_size"],
            win=p["win_size"],
            fmin=p["fmin"],
            fmax=p["fmax"],
        )
    else:
        p = _parse_call(spec["linear"])
        assert p.get("center") is False
        ours = linear_spectrogram(wav, n_fft=p["n_fft"], hop=p["hop_size"], win=p["win_size"])
        assert ours.shape[-1] == spectrogram_frames(wav.shape[-1], p["hop_size"])
    assert_close(ours, tensors[out_key], what=out_key)


def test_one_dimensional_waveform_is_a_batch_of_one():
    wav = torch.randn(6400, generator=torch.Generator().manual_seed(0))
    single = linear_spectrogram(wav)
    batched = linear_spectrogram(torch.stack([wav, 0.5 * wav]))
    assert single.shape == (1, 1025, spectrogram_frames(6400))
    assert torch.allclose(batched[0], single[0])
    # magnitude is (nearly) linear in the amplitude
    assert torch.allclose(batched[1], 0.5 * single[0], rtol=1e-3, atol=1e-3)


def test_frames_for_non_multiple_lengths():
    for n in (1280, 1281, 1919, 1920):
        assert linear_spectrogram(torch.zeros(1, n) + 0.1).shape[-1] == spectrogram_frames(n) == (n - 640) // 640 + 1


def test_mel_of_silence_is_the_log_floor():
    mel = mel_spectrogram(torch.zeros(1, 3200))
    assert mel.shape[:2] == (1, 128)
    assert torch.allclose(mel, torch.full_like(mel, float(np.log(1e-5))))


def test_too_short_waveform_is_refused():
    with pytest.raises(ValueError, match="too short"):
        linear_spectrogram(torch.zeros(1, 500))
