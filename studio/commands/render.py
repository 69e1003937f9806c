"""``studio render``: a script with several speakers → one WAV per line, the joined WAV, SRT and a report.

Run the same command again to resume an interrupted render (finished lines are kept) or to re-render only the
lines an edit of the script changed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from studio.commands.argtypes import ranged
from studio.inference.requests import SEED_MAX


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a script (NAME: lines, .txt, .md, .srt, .epub) with voices of the library",
        description="Render a script line by line with take checks and retries. See README 'Scripts'.",
    )
    p.add_argument("script", type=Path, help="the script file (.script/.txt/.md/.srt/.vtt/.epub)")
    p.add_argument(
        "--cast",
        action="append",
        default=[],
        metavar="NAME=VOICE[,STYLE]",
        help="who speaks NAME's lines (repeatable); VOICE[,STYLE] without NAME= casts every other speaker",
    )
    p.add_argument("--out", type=Path, required=True, help="render folder (created; reused to resume)")
    p.add_argument("--format", default=None, help="script format if not by extension: script, txt, md, srt, vtt, epub")
    p.add_argument("--lang", default="auto", help="language of the text: auto, en, zh, ja, … (default auto)")
    p.add_argument(
        "--retries", type=ranged(int, 0, 10, "retries"), default=2, help="re-renders of a failing line (default 2)"
    )
    p.add_argument(
        "--seed", type=ranged(int, -1, SEED_MAX, "the seed"), default=-1, help="≥ 0: a repeatable render; -1 = random"
    )
    p.add_argument("--pauses", default="natural", help="pause preset: natural, audiobook or fast (default natural)")
    p.add_argument("--no-check", action="store_true", help="no Whisper/similarity/length checks, hence no retries")
    p.add_argument("--max-cer", type=float, default=None, help="a take above this CER is re-rendered (default 0.5)")
    p.add_argument(
        "--min-similarity", type=float, default=None, help="a take below this similarity is re-rendered (default 0.7)"
    )
    p.add_argument("--speed", type=float, default=1.0, help="speaking speed (a subtitle line may go up to 1.25×)")
    p.add_argument("--max-sentence-s", type=float, default=60.0, help="cap on each sentence's length in seconds")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="folder of base models (default: pretrained/)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(run=run)


def _settings(args: argparse.Namespace):
    from studio.services.scripts.state import RenderSettings

    limits = {}
    if args.max_cer is not None:
        limits["max_cer"] = args.max_cer
    if args.min_similarity is not None:
        limits["min_similarity"] = args.min_similarity
    return RenderSettings(
        lang=args.lang,
        retries=args.retries,
        seed=args.seed,
        check=not args.no_check,
        pauses=args.pauses,
        speed=args.speed,
        max_sentence_s=args.max_sentence_s,
        **limits,
    ).validated()


def _progress(event) -> None:
    if event.line is None:
        return
    eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
    print(f"[{event.done + 1}/{event.total}] line {event.line + 1}: {event.message[:60]}{eta}", flush=True)


def run(args: argparse.Namespace) -> int:
    from studio.services.scripts import load_script
    from studio.services.scripts.render import ScriptRenderer
    from studio.services.scripts.state import parse_cast
    from studio.services.studio import Studio
    from studio.settings import StudioSettings

    settings = _settings(args)
    script = load_script(args.script, args.format)
    config = StudioSettings(device=args.device)
    if args.workspace:
        config.workspace = args.workspace
    if args.pretrained:
        config.pretrained = args.pretrained
    services = Studio(config).script_services()
    if not settings.check:
        services["checker"] = None
    renderer = ScriptRenderer.create(args.out, script, parse_cast(args.cast), settings, **services)
    before = renderer.status()
    if before.done:
        print(f"Resuming: {before.done} of {before.total} line(s) already rendered in {args.out}.")
    start = time.perf_counter()
    status = renderer.render(on_progress=_progress)
    for line in status.lines:
        if line.status != "ok" and line.status != "unchecked":
            print(f"  {line.symbol} line {line.index + 1} ({line.speaker}): {line.reason}")
    share = status.rerendered / status.total if status.total else 0.0
    print(
        f"Rendered {status.total} line(s) in {time.perf_counter() - start:.1f} s: {status.ok} ✓, {status.warned} ⚠, "
        f"{status.rerendered} re-rendered ({share:.0%})."
    )
    print(f"Wrote {status.audio}, {status.subtitles} and {args.out / 'report.json'}.")
    return 0 if status.state == "done" else 1
