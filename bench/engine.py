"""Engine benchmark per precision mode, at official sizes with random weights stored in the official formats.

    python bench/engine.py [--modes fp32,bf16,int8-pytorch,int8,int8+openvino,auto] [--threads 2] [--rounds 1]
                           [--quick]

Prints the machine (``lscpu`` model and SIMD flags, load average before and after) and one table: per mode,
GPT prefill and decode tokens/s, SoVITS decode RTF, end-to-end RTF for ~10 s of English and of Chinese
speech, time to first audio for a voice already loaded (token streaming), peak RSS after the English and
after the Chinese synthesis, and the quality measures against fp32 (teacher-forced GPT KL/top-1, SoVITS SNR,
Chinese-BERT feature error) — each speed figure with its ratio to the fp32 column.

Every mode runs in its own process (so peak RSS is that mode's), through the studio's real path:
``SynthesisService(precision=mode)`` loads the GPT ``.ckpt`` and SoVITS ``.pth`` through the weights cache,
HuBERT and the Chinese BERT from Hugging Face folders (chinese-roberta-wwm-ext-large sizes, a small vocabulary),
the BERT only when Chinese text arrives. ``--rounds 2`` runs the modes twice, alternating, and reports medians.
The random GPT never says "stop", so every sentence is capped at ``--tokens`` tokens (125 = 5 s; two sentences
≈ 10 s of speech). ``--quick``: tiny sizes and 12 tokens — a smoke test, not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from studio.models.eres2net import ERes2NetV2, ERes2NetV2Config
from studio.models.sovits import SoVITSConfig, SoVITSSynthesizer
from studio.models.text2semantic import Text2SemanticConfig

HERE = Path(__file__).resolve().parent
TEXT = TEXT_EN = (
    "The quick brown fox jumps over the lazy dog near the river bank. Then it runs back home before the rain."
)
TEXT_ZH = "今天天气很好，我们一起去公园散步吧。然后在湖边坐一会儿，看看风景再回家。"
REF_TEXT = "Please restart the router before you call the help desk."
WARM_EN = "A short warm-up line."
WARM_ZH = "先热身一下。"
GOLDEN = Path(os.environ.get("STUDIO_GOLDEN_DIR", HERE.parent.parent / "shared" / "golden"))


# ------------------------------------------------------------------------------------------------ shared helpers
# (bench/gpu_check.py builds its models with these)


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


# ------------------------------------------------------------------------------------------------ files


def _sizes(quick: bool):
    from transformers import BertConfig, HubertConfig

    gpt, sovits, hubert = Text2SemanticConfig.v2(), SoVITSConfig.v2(), HubertConfig()
    bert = BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      vocab_size=58, max_position_embeddings=512)  # fmt: skip
    if quick:
        gpt = replace(gpt, embedding_dim=64, hidden_dim=64, n_head=4, n_layer=2)
        hubert = HubertConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                              conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)  # fmt: skip
        sovits = replace(sovits, inter_channels=16, hidden_channels=16, filter_channels=32, n_layers=2,
                         mrte_hidden_channels=16, style_hidden=16, gin_channels=16, ssl_dim=64,
                         upsample_initial_channel=32)  # fmt: skip
        bert = replace_bert(bert, num_hidden_layers=3, intermediate_size=256)  # the GPT reads 1024-d
    return gpt, sovits, hubert, bert


def replace_bert(config, **changes):
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def write_files(folder: Path, quick: bool) -> dict[str, str]:
    """Random weights in the official formats: s1 .ckpt, s2 .pth (WebUI export), HuBERT and BERT folders."""
    from transformers import BertForMaskedLM, HubertModel

    from studio.models.sovits.checkpoint import save_sovits_official
    from studio.models.text2semantic import Text2SemanticModel
    from studio.models.text2semantic_checkpoint import save_text2semantic_official

    gpt_cfg, sovits_cfg, hubert_cfg, bert_cfg = _sizes(quick)
    torch.manual_seed(0)
    gpt = save_text2semantic_official(Text2SemanticModel(gpt_cfg), None, folder / "bench_gpt.ckpt", "bench")
    sovits = save_sovits_official(SoVITSSynthesizer(sovits_cfg), None, folder / "bench_sovits.pth", "bench")
    HubertModel(hubert_cfg).save_pretrained(folder / "chinese-hubert-base")
    BertForMaskedLM(bert_cfg).save_pretrained(folder / "chinese-roberta-wwm-ext-large")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(GOLDEN / "hf_tiny_bert" / name, folder / "chinese-roberta-wwm-ext-large" / name)
    t = np.arange(int(5.0 * 32000)) / 32000
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    sf.write(folder / "ref.wav", wave.astype(np.float32), 32000)
    (folder / "pretrained").mkdir(exist_ok=True)
    return {"gpt": str(gpt), "sovits": str(sovits),
            "hubert": str(folder / "chinese-hubert-base"), "bert": str(folder / "chinese-roberta-wwm-ext-large"),
            "ref": str(folder / "ref.wav"), "pretrained": str(folder / "pretrained")}  # fmt: skip


# ------------------------------------------------------------------------------------------------ one mode


def _rss_gib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: ru_maxrss survives exec, so a child would
    report its parent's peak (the parent holds every model while writing the files)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _best(fn, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_mode(mode: str, files: dict[str, str], tokens: int) -> dict:
    """Every figure for one precision mode (runs in a fresh process, set up as the CLI sets itself up)."""
    from studio.inference.runtime import return_freed_memory

    return_freed_memory()
    from studio.inference.requests import SynthesisRequest
    from studio.models.generate import generate_semantic
    from studio.models.kv_cache import KVCache
    from studio.pretrained import PretrainedAssets
    from studio.services.synthesis import SynthesisService, VoiceModels

    mode = _use_mode(mode)
    service = SynthesisService(PretrainedAssets(Path(files["pretrained"])), device="cpu",
                               hubert_dir=Path(files["hubert"]), bert_dir=Path(files["bert"]), precision=mode)  # fmt: skip
    start = time.perf_counter()
    synth = service.synthesizer(VoiceModels(Path(files["gpt"]), Path(files["sovits"])))
    out: dict = {"load_s": time.perf_counter() - start, "plan": synth.models.precision.describe()}
    gpt, sovits = synth.models.gpt, synth.models.sovits

    n_text, n_prompt = 80, 150  # ≈ a 6 s reference with its transcript + one sentence
    gen = torch.Generator().manual_seed(0)
    phones = torch.randint(0, 700, (1, n_text), generator=gen)
    bert = torch.zeros(1, 1024, n_text)
    prompt = torch.randint(0, 1024, (1, n_prompt), generator=gen)

    def prefill():
        with torch.inference_mode():
            gpt.prefill(gpt.embed_text(phones, bert), prompt, KVCache.for_model(gpt, 1, n_text + n_prompt + 8))

    t_prefill = _best(prefill)
    out["prefill_tok_s"] = (n_text + n_prompt) / t_prefill

    def decode():
        with torch.inference_mode():
            return generate_semantic(
                gpt, phones, bert, prompt, max_steps=tokens, generator=torch.Generator().manual_seed(0)
            )

    t_total = _best(decode, repeats=2)
    out["decode_tok_s"] = (tokens - 1) / max(t_total - t_prefill, 1e-9)

    codes = torch.randint(0, 1024, (1, 1, 110), generator=gen)
    ref_spec = [torch.rand(1, sovits.config.spec_channels, 250, generator=gen)]
    lengths = iter(range(100, 111))  # every call a new length, as every sentence is (kernels built per shape)

    def vocode():
        n = next(lengths)
        with torch.inference_mode():
            sovits.decode(codes[..., :n], phones[:, :50], ref_spec, noise_scale=0.5,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
        return n

    out["sovits_rtf"] = _best(vocode) / 4.0  # ~100 tokens = 4 s

    def request(text: str, lang: str, cap: int = tokens, **kw) -> SynthesisRequest:
        return SynthesisRequest(text=text, lang=lang, reference=Path(files["ref"]), ref_text=REF_TEXT, ref_lang="en",
                                split="cut5", seed=0, max_tokens_per_sentence=cap, **kw)  # fmt: skip

    for lang, text, warm_text in (("en", TEXT_EN, WARM_EN), ("zh", TEXT_ZH, WARM_ZH)):
        # Warm with another text: the reference is encoded once (and the BERT loads for zh), but the measured
        # sentences have lengths not seen before, as a user's next text does (the random GPT never stops, so
        # the lengths are the caps).
        synth.synthesize(request(warm_text, lang, cap=max(2, tokens // 2)))
        start = time.perf_counter()
        result = synth.synthesize(request(text, lang))
        out[f"e2e_rtf_{lang}"] = (time.perf_counter() - start) / result.duration_s
        out[f"audio_s_{lang}"] = result.duration_s
        if lang == "en":
            firsts = []
            for _ in range(3):
                start = time.perf_counter()
                next(iter(synth.stream(request(text, lang, stream_tokens=16))))
                firsts.append(time.perf_counter() - start)
            out["ttfa_s"] = statistics.median(firsts)
        out[f"rss_{lang}_gib"] = _rss_gib()
    return out


def _use_mode(name: str) -> str:
    """A column's precision, setting the runtimes it names: "int8-pytorch" is int8 with PyTorch's GPT step,
    "int8-onnxruntime" int8 with ONNX Runtime's; a "+openvino" suffix decodes SoVITS on OpenVINO
    ("int8+openvino"); a plain mode lets the studio choose (as users get it)."""
    from studio.inference.precision_choice import DECODER_ENV, RUNTIME_ENV

    name, _, decoder = name.partition("+")
    mode, _, runtime = name.partition("-")
    for env, value in ((RUNTIME_ENV, runtime), (DECODER_ENV, decoder)):
        if value:
            os.environ[env] = value
        else:
            os.environ.pop(env, None)
    return mode


# ------------------------------------------------------------------------------------------------ quality


def quality(files: dict[str, str], modes: list[str]) -> dict[str, dict]:
    """Quality of each mode against fp32 on the benchmark's own weights (parent process)."""
    import copy

    from studio.inference.precision_choice import resolve_plan
    from studio.models import onnx_step
    from studio.models.precision import convert_gpt, convert_linears, prepare_sovits
    from studio.models.precision_quality import gpt_agreement, relative_error, snr_db, teacher_forced_logits
    from studio.models.sovits.checkpoint import load_sovits
    from studio.models.text2semantic_checkpoint import load_text2semantic
    from studio.models.text_features import ChineseBertFeatures

    gpt = load_text2semantic(Path(files["gpt"])).model.eval()
    gen = torch.Generator().manual_seed(7)
    probe = (torch.randint(0, 700, (1, 60), generator=gen), torch.randn(1, 1024, 60, generator=gen) * 0.1,
             torch.randint(0, 1024, (1, 120), generator=gen))  # fmt: skip
    ref_logits = teacher_forced_logits(gpt, *probe)
    sovits = load_sovits(Path(files["sovits"])).model.eval()
    codes, phones = torch.randint(0, 1024, (1, 1, 50), generator=gen), torch.randint(0, 700, (1, 25), generator=gen)
    spec = [torch.rand(1, sovits.config.spec_channels, 200, generator=gen)]
    with torch.inference_mode():
        ref_wav = sovits.decode(codes, phones, spec, noise_scale=0.0)
    bert = ChineseBertFeatures(Path(files["bert"]))
    ref_bert = bert.phone_features("今天天气很好", [2] * 6)
    results = {}
    for mode in modes:
        plan = resolve_plan(_use_mode(mode))
        light_gpt = convert_gpt(copy.deepcopy(gpt), plan.gpt)
        if plan.gpt_runtime == "onnxruntime":
            onnx_step.attach(light_gpt)
        agree = gpt_agreement(ref_logits, teacher_forced_logits(light_gpt, *probe))
        light_sovits = copy.deepcopy(sovits)
        prepare_sovits(light_sovits, plan.sovits, plan.sovits_runtime)
        with torch.inference_mode():
            wav = light_sovits.decode(codes, phones, spec, noise_scale=0.0)
        light_bert = copy.deepcopy(bert)
        convert_linears(light_bert.model, plan.bert)
        results[mode] = {"kl": agree.kl, "top1": agree.top1, "snr_db": snr_db(ref_wav, wav),
                         "bert_rel": relative_error(ref_bert, light_bert.phone_features("今天天气很好", [2] * 6))}  # fmt: skip
        del light_gpt, light_sovits, light_bert
    return results


# ------------------------------------------------------------------------------------------------ table

ROWS = [
    ("GPT prefill, tokens/s", "prefill_tok_s", "{:,.0f}", True),
    ("GPT decode, tokens/s", "decode_tok_s", "{:,.1f}", True),
    ("SoVITS decode RTF", "sovits_rtf", "{:.3f}", False),
    ("End to end RTF, English", "e2e_rtf_en", "{:.3f}", False),
    ("End to end RTF, Chinese", "e2e_rtf_zh", "{:.3f}", False),
    ("Time to first audio (warm voice), s", "ttfa_s", "{:.2f}", False),
    ("Peak RSS after English, GiB", "rss_en_gib", "{:.2f}", False),
    ("Peak RSS after Chinese, GiB", "rss_zh_gib", "{:.2f}", False),
    ("Voice load, s", "load_s", "{:.1f}", False),
]
QROWS = [("GPT KL vs fp32, nats", "kl", "{:.2e}"), ("GPT top-1 agreement", "top1", "{:.1%}"),
         ("SoVITS SNR vs fp32, dB", "snr_db", "{:.1f}"), ("BERT feature rel. error", "bert_rel", "{:.4f}")]  # fmt: skip


def print_table(figures: dict[str, list[dict]], qual: dict[str, dict], modes: list[str]) -> None:
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in figures[mode])

    width = 34
    print("\n" + "figure".ljust(40) + "".join(m.rjust(width) for m in modes))
    for label, key, fmt, higher in ROWS:
        cells = []
        for mode in modes:
            values = [r[key] for r in figures[mode]]
            cell = fmt.format(med(mode, key))
            if len(values) > 1:
                cell += f" [{fmt.format(min(values))}–{fmt.format(max(values))}]"
            if mode != "fp32" and "fp32" in figures:
                ratio = med(mode, key) / med("fp32", key) if higher else med("fp32", key) / med(mode, key)
                cell += f" ({ratio:.2f}×)"
            cells.append(cell.rjust(width))
        print(label.ljust(40) + "".join(cells))
    for label, key, fmt in QROWS:
        print(label.ljust(40) + "".join(fmt.format(qual[m][key]).rjust(width) for m in modes))
    print("(ratio = speed relative to fp32: higher is better; for RTF/TTFA/RSS the ratio is fp32 ÷ mode)")
    for mode in modes:
        print(f"{mode}: {figures[mode][0]['plan']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="fp32,bf16,int8-pytorch,int8,int8+openvino,auto",
                        help="columns: fp32, bf16, int8, auto; int8-pytorch / int8-onnxruntime force the GPT step's "
                             "runtime; a +openvino suffix decodes SoVITS on OpenVINO")  # fmt: skip
    parser.add_argument("--tokens", type=int, default=125, help="semantic tokens per sentence (25 = 1 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="run every mode this many times, alternating")
    parser.add_argument("--quick", action="store_true", help="tiny models, 12 tokens: a smoke test, not figures")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--files", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokens = 12 if args.quick else args.tokens
    if args.child:
        # On the studio's compute thread, where the services run the models (studio.inference.compute_thread): the
        # direct timings below and the synthesis calls then share one OpenMP team, as in the CLI and the server.
        from studio.inference import compute_thread
        from studio.inference.runtime import return_freed_memory

        return_freed_memory()  # before the compute thread starts, as the CLI does
        figures = compute_thread.run(run_mode, args.child, json.loads(args.files), tokens)
        print("RESULT " + json.dumps(figures), flush=True)
        return
    sys.path.insert(0, str(HERE))
    from render import machine  # lscpu model and SIMD flags, load average

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    sizes = "TINY sizes (--quick: a smoke test, not figures)" if args.quick else "official sizes (v2)"
    print(f"torch {torch.__version__}, CPU, {args.threads} threads; {sizes}, random weights\n{machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, STUDIO_CACHE_DIR=str(Path(tmp) / "cache"))
        os.environ["STUDIO_CACHE_DIR"] = env["STUDIO_CACHE_DIR"]
        files = write_files(Path(tmp), args.quick)
        figures: dict[str, list[dict]] = {m: [] for m in modes}
        for round_ in range(args.rounds):
            for mode in modes:
                cmd = [sys.executable, __file__, "--child", mode, "--files", json.dumps(files),
                       "--threads", str(args.threads), "--tokens", str(tokens)]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(f"[{mode}] failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
                    continue
                figures[mode].append(json.loads(line[7:]))
                print(f"round {round_ + 1}, {mode}: done (load {os.getloadavg()[0]:.2f})", flush=True)
        modes = [m for m in modes if figures[m]]
        qual = quality(files, modes)
    print_table(figures, qual, modes)
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
