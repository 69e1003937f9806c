"""Engine benchmark at official sizes (random weights): GPT prefill/decode speed, SoVITS RTF, end to end — v2
and v2ProPlus side by side.

    python bench/engine.py [--device cpu|cuda] [--tokens 100] [--threads N] [--versions v2,v2ProPlus] [--quick]

Prints the machine (``lscpu`` model and SIMD flags, load average before and after), then GPT prefill and decode
tokens/s (the GPT is the same network for both: v2Pro/v2ProPlus use ``s1v3.ckpt`` with the v2 sizes), and per
SoVITS version: the decode real-time factor (compute time / audio time), the speaker-verification embedding
time of the reference (v2ProPlus: ERes2NetV2 w24 s4, 80-bin fbank; none for v2), end-to-end RTF with the
reference encoding (SV embedding included) and time to first audio. The v2ProPlus generator and the SV model
are written in upstream's file formats (WebUI export with its ``06`` header; the SV state dict as
``sv/pretrained_eres2netv2w24s4ep4.ckpt`` holds it, fp16) and read back through the studio's loaders, so the
figures are for what a user's files load into. English text is used, so the Chinese BERT is not involved.

``--quick`` shrinks every model to a few layers and channels and decodes 20 tokens: a smoke test that the
benchmark runs (seconds on a shared CPU), not a measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from studio.inference.requests import SynthesisRequest
from studio.inference.synthesizer import EngineModels, Synthesizer
from studio.models.content_encoder import ContentEncoder
from studio.models.eres2net import ERes2NetV2, ERes2NetV2Config
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


def bench_sovits(label: str, sovits: SoVITSSynthesizer, device: torch.device, n_tokens: int) -> None:
    cfg = sovits.config
    codes = torch.randint(0, 1024, (1, 1, n_tokens), device=device)
    phones = torch.randint(0, 700, (1, n_tokens // 2), device=device)
    ref = [torch.rand(1, cfg.spec_channels, 250, device=device)]
    # v2ProPlus: the reference's SV embedding joins the global conditioning (computed once per reference)
    sv = [torch.randn(1, cfg.sv_dim, device=device)] if cfg.uses_speaker_verification else None

    def decode():
        with torch.inference_mode():
            return sovits.decode(codes, phones, ref, noise_scale=0.5, sv_emb=sv)

    t, wav = _timed(decode, device)
    audio_s = wav.shape[-1] / 32000
    print(f"[{label}] SoVITS decode: {audio_s:.2f} s of audio in {t:.2f} s → RTF {t / audio_s:.3f}")


def bench_sv(label: str, verifier, ref: Path, device: torch.device) -> None:
    """The speaker-verification embedding of the 5 s reference (resample to 16 kHz, fbank, ERes2NetV2)."""
    from studio.inference.reference import load_reference, reference_sv_embedding

    clip = load_reference(ref)
    t, emb = _timed(lambda: reference_sv_embedding(verifier, clip.wav32k, "the benchmark reference"), device)
    print(f"[{label}] SV embedding of a {len(clip.wav32k) / 32000:.1f} s reference: {t * 1000:.0f} ms "
          f"({emb.shape[-1]}-d)")  # fmt: skip


def _forget_references(synth: Synthesizer) -> None:
    """Empty the synthesizer's reference cache (private: the benchmark times what a new reference costs)."""
    synth._conditioner._cache.clear()


def bench_end_to_end(label: str, synth: Synthesizer, ref: Path, n_tokens: int) -> None:
    base = SynthesisRequest(text=TEXT, lang="en", reference=ref, ref_text=REF_TEXT, ref_lang="en", split="cut5",
                            seed=0, max_tokens_per_sentence=n_tokens)  # fmt: skip
    synth.synthesize(base)  # warm-up, fills the reference cache
    _forget_references(synth)  # measure the reference encoding too (HuBERT, spectrogram, SV embedding)
    start = time.perf_counter()
    result = synth.synthesize(base)
    total = time.perf_counter() - start
    print(f"[{label}] End to end: {result.duration_s:.2f} s of audio ({len(result.sentences)} sentences) in "
          f"{total:.2f} s → RTF {total / result.duration_s:.3f}; time to first audio "
          f"{result.timings['first_audio_s']:.2f} s (sentence streaming, reference encoding included)")  # fmt: skip
    import dataclasses

    _forget_references(synth)
    start = time.perf_counter()
    first = next(iter(synth.stream(dataclasses.replace(base, stream_tokens=16))))
    print(f"[{label}] Time to first audio with token streaming (16 tokens): {time.perf_counter() - start:.2f} s "
          f"(first chunk {len(first.audio) / 32000:.2f} s long)")  # fmt: skip


# ------------------------------------------------------------------------------------------------ models


def _shrink_sovits(cfg: SoVITSConfig, ssl_dim: int, sv_dim: int) -> SoVITSConfig:
    """--quick: the same structure with a few channels and layers (v2ProPlus keeps its wider first kernel)."""
    wide = cfg.upsample_initial_channel > SoVITSConfig.v2().upsample_initial_channel
    return replace(
        cfg, inter_channels=16, hidden_channels=16, filter_channels=32, n_layers=2, mrte_hidden_channels=16,
        style_hidden=16, gin_channels=32 if cfg.uses_speaker_verification else 16, ssl_dim=ssl_dim,
        upsample_initial_channel=48 if wide else 32, sv_dim=sv_dim if cfg.uses_speaker_verification else 0,
    )  # fmt: skip


def model_sizes(quick: bool):
    """(GPT config, SV config, HuBERT config, SoVITS config per version): official sizes, or tiny for --quick."""
    from transformers import HubertConfig

    gpt, sv, hubert = Text2SemanticConfig.v2(), ERes2NetV2Config.official(), HubertConfig()
    sovits = {"v2": SoVITSConfig.v2(), "v2ProPlus": SoVITSConfig.v2ProPlus()}
    if quick:
        gpt = replace(gpt, embedding_dim=64, hidden_dim=64, n_head=4, n_layer=2)
        sv = replace(sv, num_blocks=(1, 1, 1, 1), m_channels=8, embedding_size=16)
        hubert = HubertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                              conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)  # fmt: skip
        sovits = {v: _shrink_sovits(c, hubert.hidden_size, sv.embedding_dim) for v, c in sovits.items()}
    return gpt, sv, hubert, sovits


def official_files(version: str, cfg: SoVITSConfig, sv_cfg: ERes2NetV2Config, folder: Path, device):
    """Random weights written as upstream's files and loaded back: (SoVITS model, speaker verifier or None)."""
    from studio.models.sovits.checkpoint import load_sovits, save_sovits_official
    from studio.models.speaker_verification import load_speaker_verifier

    model = SoVITSSynthesizer(cfg)  # with the posterior encoder: the export drops it, as the WebUI's does
    path = save_sovits_official(model, None, folder / f"bench_{version}.pth", f"bench: random {version} weights")
    del model
    loaded = load_sovits(path, device)
    print(f"[{version}] {path.name}: {path.stat().st_size / 2**20:,.0f} MiB, header {path.read_bytes()[:2]!r}, "
          f"detected {loaded.version}; inference parameters {sum(p.numel() for p in loaded.model.parameters()):,}")  # fmt: skip
    if not cfg.uses_speaker_verification:
        return loaded.model.eval(), None
    sv_path = folder / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"
    sv_path.parent.mkdir(exist_ok=True)
    torch.save({k: v.half() for k, v in ERes2NetV2(sv_cfg).state_dict().items()}, sv_path)  # upstream: fp16
    verifier = load_speaker_verifier(sv_path, device)
    print(f"[{version}] SV model {sv_path.name}: {sv_path.stat().st_size / 2**20:,.0f} MiB, "
          f"{sum(p.numel() for p in verifier.model.parameters()):,} parameters, "
          f"{verifier.embedding_dim}-d embedding")  # fmt: skip
    return loaded.model.eval(), verifier


def write_reference(path: Path) -> Path:
    t = np.arange(int(5.0 * 32000)) / 32000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 32000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokens", type=int, default=100, help="semantic tokens per sentence (25 = 1 s)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--versions", default="v2,v2ProPlus", help="SoVITS versions to measure (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="tiny models, 20 tokens: a smoke test, not figures")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    device = torch.device(args.device)
    tokens = 20 if args.quick else args.tokens
    torch.manual_seed(0)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import machine  # lscpu model and SIMD flags, load average

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sizes = "TINY sizes (--quick: a smoke test, not figures)" if args.quick else "official sizes"
    print(f"Device: {name}; torch {torch.__version__}; {sizes}, random weights, float32\n{machine()}")
    gpt_cfg, sv_cfg, hubert_cfg, sovits_cfgs = model_sizes(args.quick)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    unknown = sorted(set(versions) - set(sovits_cfgs))
    if unknown:
        parser.error(f"unknown version(s) {', '.join(unknown)}; known: {', '.join(sovits_cfgs)}")

    gpt = Text2SemanticModel(gpt_cfg).to(device).eval()
    print(f"GPT parameters: {sum(p.numel() for p in gpt.parameters()):,} (v2 and s1v3 for v2Pro/v2ProPlus)")
    bench_gpt(gpt, device, tokens)

    from transformers import HubertModel

    with tempfile.TemporaryDirectory() as tmp:
        hubert_dir = Path(tmp) / "chinese-hubert-base"
        HubertModel(hubert_cfg).save_pretrained(hubert_dir)  # HuBERT-base sizes, random weights
        content = ContentEncoder(hubert_dir, device=device)
        ref = write_reference(Path(tmp) / "ref.wav")
        for version in versions:
            sovits, verifier = official_files(version, sovits_cfgs[version], sv_cfg, Path(tmp), device)
            bench_sovits(version, sovits, device, tokens)
            if verifier is not None:
                bench_sv(version, verifier, ref, device)
            models = EngineModels(gpt=gpt, sovits=sovits, content_encoder=content, bert=None, version=version,
                                  device=device, speaker_verifier=verifier)  # fmt: skip
            bench_end_to_end(version, Synthesizer(models), ref, tokens)
            del sovits, verifier, models
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
