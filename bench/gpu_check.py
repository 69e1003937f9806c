"""The Python side of ``bench/gpu_check.sh``: one stage per call, each printing its own figures.

    python bench/gpu_check.py --stage env|gpt|e2e|train-gpt|train-sovits [--dry-run] [--tokens N] [--steps N]

Stages (official sizes, random weights, on CUDA):

* ``env`` — torch, CUDA, cuDNN, the GPU; exits 3 when this torch has no usable CUDA (e.g. the CPU wheel);
* ``gpt`` — teacher-forced GPT decoding (the same tokens in every mode): tokens/s of today's dynamic path, the
  static step eager, replayed as CUDA graphs in fp32 and in bf16/fp16, with each mode's logits against the
  dynamic fp32 ones (relative L2, top-1 agreement); then the sampling loop (``generate_semantic``) static vs
  dynamic; peak VRAM;
* ``e2e`` — the studio's Synthesizer end to end (v2, English): RTF, time to first audio with token streaming
  for a warm voice, peak VRAM, with the static decoder and with the dynamic path;
* ``train-gpt`` / ``train-sovits`` — the studio's trainers (``GPTTrainer``/``SoVITSTrainer`` under
  ``run_stage``: events, the step cap, the final checkpoint and weights) on random official-size base files in
  upstream's formats and a small made-up dataset: LoRA rank 16, ``--steps`` steps, losses, step times, VRAM.

``--dry-run`` runs a stage on the CPU with tiny models and a few tokens/steps: it proves the code paths, not
speed (the static path is forced on; "graphs" are eager there). Every mode inside a stage is attempted on its
own: a failure prints its error and the stage goes on.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # a checkout without ``pip install -e``

NO_CUDA = 3  # exit status: this torch cannot use a GPU here


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def vram(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB peak allocated"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def attempt(label: str, fn, *args, **kwargs):
    """Run one measurement; on failure print why (the last lines of the traceback) and return None."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        tail = "".join(traceback.format_exception(exc)[-6:])
        print(f"  FAILED {label}: {type(exc).__name__}: {exc}\n{tail}", flush=True)
        return None


def half_dtype(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16"


# ------------------------------------------------------------------------------------------------- env


def stage_env(args, device: torch.device) -> int:
    print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}")  # fmt: skip
    if not torch.cuda.is_available():
        print(f"NO CUDA: torch {torch.__version__} cannot use a GPU here "
              f"({'a CPU-only build' if torch.version.cuda is None else 'no device visible to this build'}). "
              "The GPU stages are skipped; install a CUDA build of torch 2.13 to run them.")  # fmt: skip
        return 0 if args.dry_run else NO_CUDA
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}, "
              f"{p.multi_processor_count} SMs; bf16 supported: {torch.cuda.is_bf16_supported()}")  # fmt: skip
    x = torch.randn(256, 256, device="cuda")
    print(f"a CUDA matmul works: {bool(torch.isfinite(x @ x).all())}")
    return 0


# ------------------------------------------------------------------------------------------------- gpt


def gpt_config(dry: bool):
    from studio.models.text2semantic import Text2SemanticConfig

    cfg = Text2SemanticConfig.v2()
    return replace(cfg, embedding_dim=64, hidden_dim=64, n_head=4, n_layer=2) if dry else cfg


def teacher_forced(gpt, text_emb, prompt, tokens, device):
    """Prefill, then one step per token of ``tokens`` (1, N): (logits list, prefill s, steps s, decoder or None)."""
    from studio.models.kv_cache import KVCache
    from studio.models.static_decode import static_decoder

    with torch.inference_mode():
        static = static_decoder(gpt)
        cache = static or KVCache.for_model(gpt, 1, text_emb.shape[1] + prompt.shape[1] + tokens.shape[1])
        runner = static or gpt
        sync(device)
        t0 = time.perf_counter()
        out = [runner.prefill(text_emb, prompt, cache)]
        sync(device)
        t1 = time.perf_counter()
        for i in range(tokens.shape[1]):
            out.append(runner.decode_step(tokens[:, i : i + 1], prompt.shape[1] + i, cache))
        sync(device)
        return out, t1 - t0, time.perf_counter() - t1, static


def gpt_modes(device: torch.device, dry: bool):
    from studio.models.static_decode import StaticDecodeConfig

    graphs = "CUDA graphs" if device.type == "cuda" else "eager (CPU: no graphs)"
    half = half_dtype(device)
    return [
        ("dynamic fp32 (today's path)", StaticDecodeConfig(use="off")),
        ("static eager fp32", StaticDecodeConfig(use="on", dtype="fp32", cuda_graphs=False)),
        (f"static {graphs} fp32", StaticDecodeConfig(use="on", dtype="fp32")),
        (f"static eager {half}", StaticDecodeConfig(use="on", dtype=half, cuda_graphs=False)),
        (f"static {graphs} {half}", StaticDecodeConfig(use="on", dtype=half)),
    ]


def stage_gpt(args, device: torch.device) -> int:
    from studio.models.text2semantic import Text2SemanticModel

    torch.manual_seed(0)
    gpt = Text2SemanticModel(gpt_config(args.dry_run)).to(device).eval()
    n_text, n_prompt, n = (12, 10, args.tokens) if args.dry_run else (80, 150, args.tokens)
    print(f"GPT {sum(p.numel() for p in gpt.parameters()):,} parameters; {n_text} phones + {n_prompt} prompt "
          f"tokens, then {n} teacher-forced steps (columns cross the 256 → 512 bucket at official size)")  # fmt: skip
    g = torch.Generator().manual_seed(1)
    phones, bert = torch.randint(1, 700, (1, n_text), generator=g), torch.randn(1, 1024, n_text, generator=g)
    prompt, tokens = torch.randint(0, 1024, (1, n_prompt), generator=g), torch.randint(0, 1024, (1, n), generator=g)
    phones, bert, prompt, tokens = (t.to(device) for t in (phones, bert, prompt, tokens))
    with torch.inference_mode():
        text_emb = gpt.embed_text(phones, bert)
    reference = measure_modes(gpt, gpt_modes(device, args.dry_run), text_emb, prompt, tokens, device, None)
    attempt("the bf16 precision mode", precision_mode, gpt, text_emb, prompt, tokens, device, reference)
    sampling_loop(gpt, phones, bert, prompt, device, args)
    print(f"GPT stage: {vram(device)}")
    return 0


def measure_modes(gpt, modes, text_emb, prompt, tokens, device, reference):
    """Warm-up (captures the graphs) then a timed teacher-forced run per mode; logits against ``reference``
    (the first mode's when None). Returns the reference."""
    from studio.models.static_decode import configure_static_decode

    n = tokens.shape[1]
    for label, config in modes:
        configure_static_decode(gpt, config)
        attempt(label, teacher_forced, gpt, text_emb, prompt, tokens, device)
        done = attempt(label, teacher_forced, gpt, text_emb, prompt, tokens, device)
        if done is None:
            continue
        logits, t_prefill, t_steps, static = done
        reference = reference or logits
        err = max(float((a.float() - b.float()).norm() / b.float().norm()) for a, b in zip(logits, reference))
        top1 = sum(int(a.argmax() == b.argmax()) for a, b in zip(logits, reference)) / len(reference)
        print(f"  {label:<38} {n / t_steps:9,.1f} tokens/s ({t_steps / n * 1000:6.2f} ms/token), prefill "
              f"{t_prefill * 1000:6.1f} ms; vs dynamic fp32: rel L2 {err:.1e}, top-1 {top1:.1%}"
              f"{'; FELL BACK to fp32' if static is not None and static.fell_back else ''}")  # fmt: skip
    configure_static_decode(gpt, None)
    return reference


def precision_mode(gpt, text_emb, prompt, tokens, device, reference) -> None:
    """The GPT converted by the studio's bf16 precision mode (bf16 weights, fp32 activations): what ``--precision
    auto`` gives on a bf16 GPU, dynamic and through the static step."""
    import copy

    from studio.models.precision import convert_gpt
    from studio.models.static_decode import StaticDecodeConfig

    if device.type == "cuda":
        from studio.inference.precision_choice import resolve_plan

        print(f"  the studio's --precision auto here: {resolve_plan('auto', device)}")
    light = convert_gpt(copy.deepcopy(gpt), "bf16")
    modes = [("bf16 precision mode, dynamic", StaticDecodeConfig(use="off")),
             ("bf16 precision mode, static step", StaticDecodeConfig(use="on"))]  # fmt: skip
    measure_modes(light, modes, text_emb, prompt, tokens, device, reference)
    del light


def sampling_loop(gpt, phones, bert, prompt, device, args) -> None:
    """The real decoding loop (sampling, EOS rules, one host sync per step): static default vs dynamic."""
    from studio.models.generate import generate_semantic
    from studio.models.static_decode import StaticDecodeConfig, configure_static_decode

    default = StaticDecodeConfig(use="on") if args.dry_run else None
    for label, config in (("generate_semantic, static (default)", default),
                          ("generate_semantic, dynamic", StaticDecodeConfig(use="off"))):  # fmt: skip
        configure_static_decode(gpt, config)

        def run():
            gen = torch.Generator(device=device).manual_seed(0)
            sync(device)
            t0 = time.perf_counter()
            result = generate_semantic(gpt, phones, bert, prompt, max_steps=args.tokens, generator=gen)
            sync(device)
            return result, time.perf_counter() - t0

        attempt(label, run)
        done = attempt(label, run)
        if done:
            result, seconds = done
            print(f"  {label:<38} {result.n_steps} tokens ({result.stop_reason}) in {seconds:.3f} s → "
                  f"{result.n_steps / seconds:,.1f} tokens/s incl. prefill and sampling")  # fmt: skip
    configure_static_decode(gpt, None)


# ------------------------------------------------------------------------------------------------- e2e


def stage_e2e(args, device: torch.device) -> int:
    import engine  # bench/engine.py: sizes, upstream-format files, the reference clip, the texts
    from transformers import HubertModel

    from studio.inference.requests import SynthesisRequest
    from studio.inference.synthesizer import EngineModels, Synthesizer
    from studio.models.content_encoder import ContentEncoder
    from studio.models.static_decode import StaticDecodeConfig, configure_static_decode
    from studio.models.text2semantic import Text2SemanticModel

    gpt_cfg, sv_cfg, hubert_cfg, sovits_cfgs = engine.model_sizes(args.dry_run)
    torch.manual_seed(0)
    gpt = Text2SemanticModel(gpt_cfg).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        HubertModel(hubert_cfg).save_pretrained(Path(tmp) / "hubert")
        content = ContentEncoder(Path(tmp) / "hubert", device=device)
        ref = engine.write_reference(Path(tmp) / "ref.wav")
        sovits, _ = engine.official_files("v2", sovits_cfgs["v2"], sv_cfg, Path(tmp), device)
        models = EngineModels(gpt=gpt, sovits=sovits, content_encoder=content, bert=None, version="v2", device=device)
        synth = Synthesizer(models)
        base = SynthesisRequest(text=engine.TEXT, lang="en", reference=ref, ref_text=engine.REF_TEXT, ref_lang="en",
                                split="cut5", seed=0, max_tokens_per_sentence=args.tokens)  # fmt: skip
        static = StaticDecodeConfig(use="on") if args.dry_run else None
        for label, config in (
            ("static decoder (default)", static),
            ("dynamic GPT path", StaticDecodeConfig(use="off")),
        ):
            configure_static_decode(gpt, config)
            attempt(label, end_to_end, label, synth, base, device)
    return 0


def end_to_end(label: str, synth, base, device: torch.device) -> None:
    sync(device)
    t0 = time.perf_counter()
    synth.synthesize(base)  # cold: encodes the reference, captures the graphs of this length
    sync(device)
    cold = time.perf_counter() - t0
    reset_peak(device)
    t0 = time.perf_counter()
    result = synth.synthesize(base)
    sync(device)
    total = time.perf_counter() - t0
    t0 = time.perf_counter()
    stream = iter(synth.stream(replace(base, stream_tokens=16)))
    first = next(stream)
    sync(device)
    ttfa = time.perf_counter() - t0
    getattr(stream, "close", lambda: None)()
    print(f"  {label:<26} {result.duration_s:.2f} s of audio ({len(result.sentences)} sentences) in {total:.3f} s "
          f"→ RTF {total / result.duration_s:.4f}; first audio (warm voice, 16-token streaming) {ttfa * 1000:.0f} ms "
          f"({len(first.audio) / 32000:.2f} s chunk), sentence streaming {result.timings.get('first_audio_s', 0) * 1000:.0f} ms; "
          f"cold first call {cold:.2f} s; {vram(device)}")  # fmt: skip


# ------------------------------------------------------------------------------------------------- training


def utterances(n: int, ssl_dim: int, seed: int = 0):
    """A made-up dataset: 3–5 s clips (noise over a tone), 10 phones/s, 25 tokens/s, ``ssl_dim`` features at 50 Hz."""
    from studio.training.datasets import Utterance

    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        seconds = 3.0 + 2.0 * float(torch.rand(1, generator=g))
        samples = int(seconds * 32000)
        t = torch.arange(samples) / 32000
        wav = 0.3 * torch.sin(2 * torch.pi * (120 + 80 * i / n) * t) + 0.02 * torch.randn(samples, generator=g)
        items.append(Utterance(
            f"clip{i:03d}", "en", torch.randint(1, 700, (int(seconds * 10),), generator=g), None,
            torch.randint(0, 1024, (int(seconds * 25),), generator=g), torch.randn(ssl_dim, samples // 640, generator=g),
            wav.float(),
        ))  # fmt: skip
    return items


def stage_train(args, device: torch.device, stage: str) -> int:
    import engine

    from studio.models.sovits import SoVITSSynthesizer
    from studio.models.sovits.checkpoint import save_sovits_official
    from studio.models.text2semantic import Text2SemanticModel
    from studio.models.text2semantic_checkpoint import save_text2semantic_official
    from studio.training.gpt_trainer import GPTTrainer
    from studio.training.run_layout import RunConfig
    from studio.training.sovits_trainer import SoVITSTrainer

    torch.manual_seed(0)
    _, _, _, sovits_cfgs = engine.model_sizes(args.dry_run)
    batch = 4 if stage == "gpt" else 2
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(name="gpucheck", workspace_root=tmp, pretrained_root=tmp, run_id="gpucheck", stages=[stage],
                        device=str(device), max_steps=args.steps, gpt_batch_size=batch, sovits_batch_size=batch,
                        warmup_steps=2, epoch_choice=False)  # fmt: skip
        items = utterances(args.steps * batch, sovits_cfgs["v2"].ssl_dim)  # one epoch holds every step
        if stage == "gpt":
            base = save_text2semantic_official(Text2SemanticModel(gpt_config(args.dry_run)), None,
                                               Path(tmp) / "base_gpt.ckpt", "gpu check: random weights")  # fmt: skip
            trainer = GPTTrainer(cfg, base, items, device)
        else:
            base = save_sovits_official(SoVITSSynthesizer(sovits_cfgs["v2"]), None, Path(tmp) / "base_s2G.pth",
                                        "gpu check: random weights")  # fmt: skip
            trainer = SoVITSTrainer(cfg, base, None, items, device)
        run_timed(trainer, cfg, device, stage)
    return 0


def run_timed(trainer, cfg, device: torch.device, stage: str) -> None:
    from studio.training.events import EventWriter
    from studio.training.loop import run_stage

    times, losses, step = [], [], trainer.train_step

    def timed_step(indices):
        sync(device)
        t0 = time.perf_counter()
        out = step(indices)
        sync(device)
        times.append(time.perf_counter() - t0)
        losses.append(out)
        return out

    trainer.train_step = timed_step
    reset_peak(device)
    summary = run_stage(trainer, cfg, EventWriter(cfg.paths.events), lambda: False)
    later = sorted(times[1:]) or times
    print(f"  {stage}: LoRA r{cfg.lora_rank}, {trainer.n_trainable:,} trainable parameters, precision "
          f"{trainer.precision.name}, batch {trainer.batch_size}; {len(times)} steps: first {times[0]:.3f} s, "
          f"median of the rest {later[len(later) // 2]:.3f} s/step; {vram(device)}")  # fmt: skip
    for i in sorted({0, len(losses) // 2, len(losses) - 1}):
        print(f"    step {i + 1:>3}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses[i].items()))
    finite = all(v == v and abs(v) != float("inf") for out in losses for v in out.values())
    print(f"    losses finite: {finite}; weights written: {summary.get('weights')}")


# ------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=["env", "gpt", "e2e", "train-gpt", "train-sovits"])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models: the code paths, not figures")
    parser.add_argument("--tokens", type=int, default=None, help="decoding steps (default 300; dry run 24)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per stage")
    args = parser.parse_args()
    args.tokens = args.tokens or (24 if args.dry_run else 300)
    if args.stage == "env":
        return stage_env(args, torch.device("cpu"))
    if not args.dry_run and not torch.cuda.is_available():
        print(f"NO CUDA in torch {torch.__version__}: stage {args.stage} skipped")
        return NO_CUDA
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        torch.set_num_threads(1)
    runs = {"gpt": stage_gpt, "e2e": stage_e2e, "train-gpt": lambda a, d: stage_train(a, d, "gpt"),
            "train-sovits": lambda a, d: stage_train(a, d, "sovits")}  # fmt: skip
    return runs[args.stage](args, device)


if __name__ == "__main__":
    sys.exit(main())
