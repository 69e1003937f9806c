"""Engine benchmark at official v2 size (random weights): GPT prefill/decode speed, SoVITS RTF, end to end.

    python bench/engine.py [--device cpu|cuda] [--tokens 100] [--threads N]

Prints: GPT prefill tokens/s, GPT decode tokens/s, SoVITS decode real-time factor (compute time / audio
time), end-to-end RTF and time to first audio (sentence streaming and token streaming). English text is
used, so the Chinese BERT is not involved (its features are zeros for non-Chinese text).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from studio.inference.requests import SynthesisRequest
from studio.inference.synthesizer import EngineModels, Synthesizer
from studio.models.content_encoder import ContentEncoder
from studio.models.generate import generate_semantic
from studio.models.kv_cache import KVCache
from studio.models.sovits import SoVITSConfig, SoVITSSynthesizer
from studio.models.text2semantic import Text2SemanticConfig, Text2SemanticModel

TEXT = "The quick brown fox jumps over the lazy dog. Then it runs back home before the rain starts."
REF_TEXT = "Please restart the router before you call the help desk."


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, repeats=3):
    fn()  # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_gpt(gpt: Text2SemanticModel, device: torch.device, n_tokens: int) -> None:
    n_text, n_prompt = 80, 150  # ≈ a 6 s reference with its transcript + one sentence
    phones = torch.randint(0, 700, (1, n_text), device=device)
    bert = torch.zeros(1, 1024, n_text, device=device)
    prompt = torch.randint(0, 1024, (1, n_prompt), device=device)

    def prefill():
        cache = KVCache.for_model(gpt, 1, n_text + n_prompt + 8)
        with torch.inference_mode():
            return gpt.prefill(gpt.embed_text(phones, bert), prompt, cache)

    t_prefill, _ = _timed(prefill, device)
    print(f"GPT prefill: {n_text + n_prompt} positions in {t_prefill * 1000:.1f} ms "
          f"→ {(n_text + n_prompt) / t_prefill:,.0f} tokens/s")  # fmt: skip

    def decode():
        gen = torch.Generator(device=device).manual_seed(0)
        with torch.inference_mode():
            return generate_semantic(gpt, phones, bert, prompt, top_k=15, top_p=1.0, temperature=1.0,
                                     repetition_penalty=1.35, early_stop_num=-1, max_steps=n_tokens, generator=gen)  # fmt: skip

    t_total, result = _timed(decode, device, repeats=2)
    steps = result.n_steps
    decode_s = max(t_total - t_prefill, 1e-9)
    print(f"GPT decode: {steps} tokens in {decode_s:.2f} s → {max(steps - 1, 1) / decode_s:,.1f} tokens/s "
          f"({decode_s / max(steps - 1, 1) * 1000:.1f} ms/token; 25 tokens = 1 s of speech)")  # fmt: skip


def bench_sovits(sovits: SoVITSSynthesizer, device: torch.device, n_tokens: int) -> None:
    codes = torch.randint(0, 1024, (1, 1, n_tokens), device=device)
    phones = torch.randint(0, 700, (1, n_tokens // 2), device=device)
    ref = [torch.rand(1, 1025, 250, device=device)]

    def decode():
        with torch.inference_mode():
            return sovits.decode(codes, phones, ref, noise_scale=0.5)

    t, wav = _timed(decode, device)
    audio_s = wav.shape[-1] / 32000
    print(f"SoVITS decode: {audio_s:.2f} s of audio in {t:.2f} s → RTF {t / audio_s:.3f}")


def bench_end_to_end(synth: Synthesizer, ref: Path, n_tokens: int) -> None:
    base = SynthesisRequest(text=TEXT, lang="en", reference=ref, ref_text=REF_TEXT, ref_lang="en", split="cut5",
                            seed=0, max_tokens_per_sentence=n_tokens)  # fmt: skip
    synth.synthesize(base)  # warm-up, fills the reference cache
    synth._references.clear()  # measure the reference encoding too
    start = time.perf_counter()
    result = synth.synthesize(base)
    total = time.perf_counter() - start
    print(f"End to end: {result.duration_s:.2f} s of audio ({len(result.sentences)} sentences) in {total:.2f} s "
          f"→ RTF {total / result.duration_s:.3f}; time to first audio {result.timings['first_audio_s']:.2f} s "
          "(sentence streaming, reference encoding included)")  # fmt: skip
    import dataclasses

    start = time.perf_counter()
    first = next(iter(synth.stream(dataclasses.replace(base, stream_tokens=16))))
    print(f"Time to first audio with token streaming (16 tokens): {time.perf_counter() - start:.2f} s "
          f"(first chunk {len(first.audio) / 32000:.2f} s long)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per sentence (25 = 1 s)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"Device: {name}; torch {torch.__version__}; official v2 sizes, random weights, float32")

    gpt = Text2SemanticModel(Text2SemanticConfig.v2()).to(device).eval()
    sovits = SoVITSSynthesizer(SoVITSConfig.v2(), with_posterior_encoder=False).to(device).eval()
    print(f"GPT parameters: {sum(p.numel() for p in gpt.parameters()):,}; "
          f"SoVITS (inference) parameters: {sum(p.numel() for p in sovits.parameters()):,}")  # fmt: skip
    bench_gpt(gpt, device, args.tokens)
    bench_sovits(sovits, device, args.tokens)

    from transformers import HubertConfig, HubertModel

    with tempfile.TemporaryDirectory() as tmp:
        hubert_dir = Path(tmp) / "chinese-hubert-base"
        HubertModel(HubertConfig()).save_pretrained(hubert_dir)  # HuBERT-base sizes, random weights
        ref = Path(tmp) / "ref.wav"
        t = np.arange(int(5.0 * 32000)) / 32000
        sf.write(ref, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 32000)
        models = EngineModels(gpt=gpt, sovits=sovits, content_encoder=ContentEncoder(hubert_dir, device=device),
                              bert=None, device=device)  # fmt: skip
        bench_end_to_end(Synthesizer(models), ref, args.tokens)


if __name__ == "__main__":
    main()
