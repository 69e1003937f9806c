"""Script rendering throughput at official v2 size (random weights): lines per minute, share re-rendered.

    python bench/render.py [--lines 50] [--device cpu|cuda] [--retries 2] [--check] [--max-sentence-s 4]

Builds official-size GPT and SoVITS models with random weights, writes them in the official export files
(``.ckpt``/``.pth``) as two library voices of a scratch workspace with a random HuBERT-base, then renders a
``--lines``-line dialogue of three speakers (two voices) through ``studio.services.scripts`` exactly as
``studio render`` does. Random weights never say "stop", so each sentence runs to ``--max-sentence-s``: the
figure is the pipeline's cost per line at that length, not a quality measure. Take checks (Whisper, speaker
similarity, length) are off unless ``--check`` (then random speech fails them and every line is re-rendered
``--retries`` times: the worst case). Prints the machine (``lscpu`` flags, load average) with the figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SPEAKERS = ("ALICE", "BOB", "NARRATOR")
SENTENCES = (
    "The lighthouse keeper climbed the stairs before dawn.",
    "Did you see the ship on the horizon last night?",
    "Nobody answered the radio, so we waited by the window.",
    "Tomorrow the storm will pass and the boats will come home.",
    "I never thought the old lamp would still work.",
)


def machine() -> str:
    flags = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
        flags = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Flags")), "")
        simd = " ".join(f for f in flags.split() if f.startswith(("avx", "sse4", "fma", "amx", "neon", "sve")))
        flags = f"{model}; SIMD flags: {simd or 'none listed'}"
    except (OSError, subprocess.SubprocessError):
        flags = "lscpu unavailable"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{flags}\nLoad average (1/5/15 min): {load}; {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}"


def script_text(n_lines: int) -> str:
    lines = []
    for i in range(n_lines):
        lines.append(f"{SPEAKERS[i % 3]}: {SENTENCES[i % len(SENTENCES)]}")
        if i % 6 == 5:
            lines.append("")  # a paragraph now and then
    return "\n".join(lines) + "\n"


def build_workspace(root: Path) -> tuple[Path, Path]:
    """(workspace with voices 'one' and 'two', pretrained folder with a random HuBERT-base)."""
    from transformers import HubertConfig, HubertModel

    from studio import pretrained as layout
    from studio.models.sovits import SoVITSConfig, SoVITSSynthesizer
    from studio.models.sovits.checkpoint import default_hparams
    from studio.models.text2semantic import Text2SemanticConfig, Text2SemanticModel
    from studio.services.voices import VoiceInfo, VoiceLibrary
    from studio.voicepack.official import OfficialStage, write_official

    torch.manual_seed(0)
    pretrained = root / "pretrained"
    HubertModel(HubertConfig()).save_pretrained(pretrained / layout.HUBERT_DIR)  # HuBERT-base size, random
    gpt_config, sovits_config = Text2SemanticConfig.v2(), SoVITSConfig.v2()
    gpt = write_official("gpt", OfficialStage(Text2SemanticModel(gpt_config), gpt_config.to_checkpoint_config(),
                                              "GPT-e0"), root / "bench-e0.ckpt")  # fmt: skip
    sovits_model = SoVITSSynthesizer(sovits_config, with_posterior_encoder=False)
    sovits = write_official("sovits", OfficialStage(sovits_model, default_hparams(sovits_config), "0epoch"),
                            root / "bench_e0_s0.pth")  # fmt: skip
    ref = root / "ref.wav"
    t = np.arange(int(5.0 * 32000)) / 32000
    sf.write(ref, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 32000)
    workspace = root / "workspace"
    for name in ("one", "two"):
        info = VoiceInfo(name, Path("."), "Please restart the router before you call.", "en", ["en"])
        VoiceLibrary(workspace).add(info, gpt=gpt, sovits=sovits, reference=ref)
    return workspace, pretrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="run take QA (random speech fails it: worst case)")
    parser.add_argument("--max-sentence-s", type=float, default=4.0, help="length each sentence runs to")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from studio.services.scripts import parse_script
    from studio.services.scripts.render import ScriptRenderer
    from studio.services.scripts.state import RenderSettings, parse_cast
    from studio.services.studio import Studio
    from studio.settings import StudioSettings

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        workspace, pretrained = build_workspace(Path(tmp))
        studio = Studio(StudioSettings(workspace=workspace, pretrained=pretrained, device=args.device))
        services = studio.script_services() | ({} if args.check else {"checker": None})
        script = parse_script(script_text(args.lines), name="bench")
        settings = RenderSettings(lang="en", seed=1, retries=args.retries, check=args.check,
                                  max_sentence_s=args.max_sentence_s, length_retries=0)  # fmt: skip
        cast = parse_cast(["ALICE=one", "BOB=two", "NARRATOR=one"])
        renderer = ScriptRenderer.create(Path(tmp) / "out", script, cast, settings, **services)
        studio.synthesis.synthesizer(studio.voices.get("one").models)  # load before the clock starts
        start = time.perf_counter()
        status = renderer.render()
        took = time.perf_counter() - start
    audio_s = sum(line.duration_s for line in status.lines)
    print(f"Device: {args.device}; {status.total} lines ({len(script.speakers)} speakers, 2 voices), "
          f"{args.max_sentence_s:g} s per sentence cap, checks {'on' if args.check else 'off'}")  # fmt: skip
    print(f"Rendered in {took:.1f} s: {status.total / took * 60:.1f} lines per minute; "
          f"{audio_s:.0f} s of audio (real-time factor {took / max(audio_s, 1e-9):.2f})")  # fmt: skip
    print(f"Re-rendered: {status.rerendered} of {status.total} lines ({status.rerendered / status.total:.0%}); "
          f"{status.ok} ✓, {status.warned} ⚠")  # fmt: skip
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
