"""Directing the voice in the engine: the style clip prompts the GPT, the timbre clips condition SoVITS (weighted
mix), and pause maps put measured silences after each punctuation mark. Tiny golden models, real clips."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.errors import StudioError
from studio.inference.pauses import PauseMap
from studio.inference.requests import OUTPUT_SAMPLE_RATE, SynthesisRequest
from studio.pretrained import PretrainedAssets
from studio.services.synthesis import SynthesisService

FRAME = OUTPUT_SAMPLE_RATE // 50  # 20 ms


@pytest.fixture(scope="module")
def service(tiny_pretrained: Path) -> SynthesisService:
    return SynthesisService(PretrainedAssets(tiny_pretrained), device="cpu")


@pytest.fixture(scope="module")
def clips(voices: Path) -> list[tuple[Path, str]]:
    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:3]
    return [(voices / "en_joe" / r["file"], r["text"]) for r in rows]


def _request(clips, **extra) -> SynthesisRequest:
    (clip, text), *_ = clips
    base = dict(
        text="Good morning.", lang="en", reference=clip, ref_text=text, ref_lang="en", seed=7,
        noise_scale=0.0, max_tokens_per_sentence=20,
    )  # fmt: skip
    return SynthesisRequest(**(base | extra))


def _record(synth, monkeypatch) -> dict[str, list]:
    """Record what reaches each model: the GPT's prompt codes and phones, and the ge SoVITS decodes with."""
    import studio.models.generate as generate

    seen: dict[str, list] = {"prompt": [], "phones": [], "ge": []}
    real_generate, real_style = generate.generate_semantic, synth.models.sovits.reference_style

    def gpt(model, phones, bert, prompt, **kw):
        seen["prompt"].append(prompt.clone())
        seen["phones"].append(phones.clone())
        return real_generate(model, phones, bert, prompt, **kw)

    def style(*args, **kw):
        ge = real_style(*args, **kw)
        seen["ge"].append(ge.clone())
        return ge

    monkeypatch.setattr(generate, "generate_semantic", gpt)
    monkeypatch.setattr(synth.models.sovits, "reference_style", style)
    return seen


def test_style_clip_changes_only_the_gpt_prompt_and_timbre_only_the_sovits_ge(service, clips, monkeypatch):
    synth = service.synthesizer()
    seen = _record(synth, monkeypatch)
    (c0, t0), (c1, t1), _ = clips
    runs = {
        "default": _request(clips),
        "style": _request(clips, style_reference=c1, style_ref_text=t1, style_ref_lang="en"),
        "timbre": _request(clips, timbre_references=((c1, 1.0),)),
        "other": _request(clips, reference=c1, ref_text=t1),
    }
    got = {}
    for name, req in runs.items():
        for key in seen:
            seen[key].clear()
        synth.synthesize(req)
        got[name] = {key: values[0] for key, values in seen.items()}

    def same(a, b, key):
        return got[a][key].shape == got[b][key].shape and torch.equal(got[a][key], got[b][key])

    # another style clip: other prompt codes and phones for the GPT, the very same ge for SoVITS
    assert not same("default", "style", "prompt") and not same("default", "style", "phones")
    assert same("default", "style", "ge")
    assert same("style", "other", "prompt") and same("style", "other", "phones")
    # another timbre clip: the same GPT prompt, the ge of that clip
    assert same("default", "timbre", "prompt") and same("default", "timbre", "phones")
    assert not same("default", "timbre", "ge") and same("timbre", "other", "ge")


def test_timbre_mix_weights_sum_as_documented(service, clips):
    synth = service.synthesizer()
    sovits = synth.models.sovits
    (c0, _), (c1, _), _ = clips
    mix = synth.reference_prompt(_request(clips, timbre_references=((c0, 1.0), (c1, 3.0))))
    assert mix.weights == (0.25, 0.75)  # normalised to sum 1
    with torch.inference_mode():
        ge1, ge2 = sovits.reference_style(mix.specs[:1]), sovits.reference_style(mix.specs[1:])
        mixed = sovits.reference_style(mix.specs, weights=mix.weights)
    assert torch.allclose(mixed, 0.25 * ge1 + 0.75 * ge2, atol=1e-6)
    assert not torch.allclose(mixed, (ge1 + ge2) / 2, atol=1e-4)

    # equal weights are upstream's mean, bit for bit: a 2:2 mix sounds exactly like reference + aux reference
    today = synth.synthesize(_request(clips, aux_references=(c1,)))
    equal = synth.synthesize(_request(clips, timbre_references=((c0, 2.0), (c1, 2.0))))
    assert np.array_equal(today.audio, equal.audio)
    alone = synth.synthesize(_request(clips, timbre_references=((c0, 0.5),)))
    assert np.array_equal(alone.audio, synth.synthesize(_request(clips)).audio)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"timbre_references": (("a.wav", -1.0),)}, "≥ 0"),
        ({"timbre_references": (("a.wav", 0.0), ("b.wav", 0.0))}, "all 0"),
        ({"timbre_references": (("a.wav", float("nan")),)}, "≥ 0"),
        ({"style_reference": Path("calm.wav")}, "calm.wav has no transcript"),
    ],
    ids=["negative", "all-zero", "nan", "style-without-text"],
)
def test_bad_direction_is_refused_in_words(service, clips, extra, words):
    with pytest.raises(StudioError, match=words):
        service.synthesize(_request(clips, **extra))


def test_v2proplus_mix_weights_each_clip_with_its_own_sv_embedding(tiny_v2proplus_pretrained, clips):
    synth = SynthesisService(PretrainedAssets(tiny_v2proplus_pretrained), device="cpu").synthesizer()
    (c0, _), (c1, _), _ = clips
    prompt = synth.reference_prompt(_request(clips, ref_text="", timbre_references=((c0, 1.0), (c1, 3.0))))
    assert len(prompt.sv_embeddings) == 2 and prompt.weights == (0.25, 0.75)
    sovits = synth.models.sovits
    with torch.inference_mode():
        ge1 = sovits.reference_style(prompt.specs[:1], prompt.sv_embeddings[:1])  # prelu(ref_enc + sv), clip 1
        ge2 = sovits.reference_style(prompt.specs[1:], prompt.sv_embeddings[1:])
        mixed = sovits.reference_style(prompt.specs, prompt.sv_embeddings, prompt.weights)
        mean = sovits.reference_style(prompt.specs, prompt.sv_embeddings)
        equal = sovits.reference_style(prompt.specs, prompt.sv_embeddings, (0.5, 0.5))
    assert torch.allclose(mixed, 0.25 * ge1 + 0.75 * ge2, atol=1e-6)  # weighted after the PReLU
    assert torch.equal(equal, mean)


def _silences(audio: np.ndarray, min_len: int = FRAME) -> list[int]:
    """Lengths (samples) of the runs of exact digital silence at least ``min_len`` long, in order."""
    quiet = np.concatenate([[False], audio == 0.0, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    return [int(b - a) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_len]


def test_pause_map_silences_are_measured_in_the_output(service, clips):
    pauses = PauseMap(comma=0.2, full_stop=0.45, question=0.7, ellipsis=0.95, dash=0.3, paragraph=1.3)
    text = "Hello there, my friend. Are you well? I think so... maybe — who knows.\n\nA new paragraph."
    result = service.synthesize(_request(clips, text=text, pauses=pauses, max_tokens_per_sentence=12))
    assert len(result.sentences) == 7
    expected = [pauses.comma, pauses.full_stop, pauses.question, pauses.ellipsis, pauses.dash, pauses.paragraph]
    assert result.pauses_s == [*expected, 0.0]
    measured = [n / OUTPUT_SAMPLE_RATE for n in _silences(result.audio)]
    assert len(measured) == len(expected), measured
    for got, want in zip(measured, expected, strict=True):
        assert abs(got - want) <= FRAME / OUTPUT_SAMPLE_RATE, (measured, expected)


def test_without_a_pause_map_the_sentence_pause_is_as_before(service, clips):
    req = _request(clips, text="Hello there, my friend. Are you well?", pause_s=0.4, split="cut5")
    synth = service.synthesizer()
    assert [p.pause_s for p in synth.pieces(req)] == [0.4, 0.4, 0.0]  # cut5 cuts at the comma too, as upstream
    result = synth.synthesize(req)
    assert [round(n / OUTPUT_SAMPLE_RATE, 2) for n in _silences(result.audio)] == [0.4, 0.4]


def test_pause_presets_files_and_refusals(tmp_path):
    natural, audiobook, fast = (PauseMap.preset(n) for n in ("natural", "audiobook", "fast"))
    assert fast.full_stop < natural.full_stop < audiobook.full_stop
    assert PauseMap.from_dict(audiobook.to_dict()) == audiobook
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"comma": 0.5, "paragraph": 2}), encoding="utf-8")
    mine = PauseMap.parse(str(path))
    assert (mine.comma, mine.paragraph, mine.full_stop) == (0.5, 2.0, natural.full_stop)
    assert PauseMap.parse(" Audiobook ") == audiobook
    with pytest.raises(StudioError, match="no pause preset named 'slow'") as info:
        PauseMap.parse("slow")
    assert "natural, audiobook, fast" in info.value.hint
    with pytest.raises(StudioError, match="Unknown mark.*semicolon"):
        PauseMap.from_dict({"semicolon": 0.2})
    with pytest.raises(StudioError, match="full stop must be between 0 and 5"):
        PauseMap.from_dict({"full_stop": 9})


def test_clauses_keep_numbers_and_quotes_whole():
    from studio.inference.pauses import clauses

    got = clauses('It costs 1,000 dollars, or 3.5 euros; he said "hi." Then - well')
    assert got == [
        ("It costs 1,000 dollars,", "comma"),
        ("or 3.5 euros;", "comma"),
        ('he said "hi."', "full_stop"),
        ("Then -", "dash"),
        ("well", None),
    ]
    assert [k for _, k in clauses("你好，世界。怎么样？好……谢谢——再见。")] == [
        "comma", "full_stop", "question", "ellipsis", "dash", "full_stop",
    ]  # fmt: skip


def test_streaming_with_a_pause_map_is_the_whole_result(service, clips):
    req = _request(clips, text="One, two. Three?", pauses=PauseMap.preset("fast"), stream_tokens=6)
    chunks = list(service.stream(req))
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), service.synthesize(req).audio)
    assert len([c for c in chunks if c.is_sentence_end]) == 3


def _studio(*argv: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "studio", *argv], capture_output=True, text=True, timeout=300)


def test_cli_directs_style_timbre_mix_and_pauses(tiny_pretrained, clips, tmp_path):
    import soundfile as sf

    (c0, t0), (c1, t1), (c2, _) = clips
    out = tmp_path / "directed.wav"
    done = _studio(
        "synth", "--pretrained", str(tiny_pretrained), "--device", "cpu", "--ref", str(c0), "--ref-text", t0,
        "--text", "Hello, world.", "--lang", "en", "--out", str(out), "--seed", "3", "--max-tokens", "12",
        "--noise-scale", "0", "--style-ref", str(c1), "--style-ref-text", t1,
        "--timbre-ref", f"{c0}:1", "--timbre-ref", f"{c2}:3", "--pauses", "fast",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 sentence(s)" in done.stdout  # the comma cut the text into two clauses
    audio, rate = sf.read(out, dtype="float32")
    (pause,) = _silences(audio)
    assert abs(pause / rate - PauseMap.preset("fast").comma) <= FRAME / rate

    bad = _studio("synth", "--ref", str(c0), "--text", "Hi.", "--out", str(out), "--timbre-ref", f"{c1}:-2")
    assert bad.returncode == 2 and "must be a number ≥ 0, got '-2'" in bad.stderr
    bad = _studio(
        "synth", "--pretrained", str(tiny_pretrained), "--ref", str(c0), "--text", "Hi.", "--out", str(out),
        "--pauses", "slow", "--device", "cpu",
    )  # fmt: skip
    assert bad.returncode != 0 and "no pause preset named 'slow'" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_take_keeps_its_style_timbre_mix_and_pause_map(tmp_path, tiny_pretrained, clips):
    import soundfile as sf

    from studio.services.studio import Studio, StudioSettings
    from studio.services.takes import ZERO_SHOT, TakeSettings

    studio = Studio(StudioSettings(workspace=tmp_path / "workspace", pretrained=tiny_pretrained, device="cpu"))
    (c0, t0), (c1, t1), _ = clips
    settings = TakeSettings(
        text="Hello there, my friend.", lang="en", voice=ZERO_SHOT, reference=str(c0), ref_text=t0, ref_lang="en",
        seed=3, max_sentence_s=0.6, noise_scale=0.0, style_reference=str(c1), style_ref_text=t1, style_ref_lang="en",
        timbre_mix=[(str(c0), 1.0), (str(c1), 3.0)], pauses=PauseMap(comma=0.6).to_dict(),
    )  # fmt: skip
    (take,) = studio.takes.generate(settings, 1, check=False)
    audio, rate = sf.read(take.wav, dtype="float32")
    (pause,) = _silences(audio)
    assert abs(pause / rate - 0.6) <= FRAME / rate
    (again,) = [t for t in studio.takes.store.list() if t.id == take.id]
    assert again.settings.style_reference == str(c1) and again.settings.pauses["comma"] == 0.6
    assert [tuple(x) for x in again.settings.timbre_mix] == [(str(c0), 1.0), (str(c1), 3.0)]
