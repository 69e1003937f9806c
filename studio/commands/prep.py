"""``studio prep``: import → clean → slice → transcribe → lint recordings into a voice project."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.commands.argtypes import ranged


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "prep",
        help="turn recordings into a clean, transcribed, checked dataset",
        description="Import recordings (wav, flac, ogg/opus, mp3, m4a/aac, webm), clean them, cut them at pauses "
        "into 3–10 s clips, transcribe them and check the result. Writes workspace/NAME/dataset.list and a report.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="recording(s) to import")
    p.add_argument("--name", required=True, help="voice project name (folder under the workspace)")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--lang", default="auto", choices=("auto", "zh", "en", "ja"), help="spoken language (default: auto)")
    p.add_argument(
        "--denoise",
        type=ranged(float, 0.0, 1.0, "denoise strength"),
        default=0.0,
        metavar="0..1",
        help="noise reduction strength (default 0 = off)",
    )
    p.add_argument(
        "--asr-model",
        default=None,
        metavar="M",
        help="faster-whisper model folder or name in pretrained/asr/ (default: the workspace's choice in Models & "
        "Settings, else the packaged whisper-base)",
    )
    p.add_argument("--no-slice", action="store_true", help="keep each recording whole (already cut clips)")
    p.add_argument("--no-asr", action="store_true", help="skip transcription (fill in the texts by hand)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from studio.dataprep.pipeline import PrepOptions
    from studio.services.dataset_prep import DatasetPrepService

    options = PrepOptions(
        language=args.lang,
        denoise=args.denoise,
        asr_model=args.asr_model,
        slice=not args.no_slice,
        transcribe=not args.no_asr,
    )
    service = DatasetPrepService(args.workspace)
    if options.transcribe and args.asr_model is None:
        _use_workspace_asr(service)
    bar = tqdm(total=100, unit="%", disable=args.json or not sys.stderr.isatty(), leave=False)
    stages = ("import", "clean", "slice", "transcribe", "lint", "save")

    def progress(stage: str, fraction: float, message: str) -> None:
        index = stages.index(stage) if stage in stages else 0
        bar.set_description(stage)
        bar.set_postfix_str(message[:40])
        bar.n = int(100 * (index + fraction) / len(stages))
        bar.refresh()

    try:
        report = service.prepare(args.inputs, args.name, options, on_progress=progress)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.summary())
    return 0


def _use_workspace_asr(service) -> None:
    """Transcribe with the Whisper model chosen for this workspace (as the studio does), and say which: a chosen
    model that has gone missing is refused now, with what to do, before any work."""
    from studio.pretrained import PretrainedAssets
    from studio.services.asr_choice import ASRChoice

    choice = ASRChoice(service.workspace_root, PretrainedAssets())
    choice.path()
    service.asr = choice
    print(
        f"Transcribing with {choice.name} (the workspace's Whisper model; --asr-model picks another).", file=sys.stderr
    )
