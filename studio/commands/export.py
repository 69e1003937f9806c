"""``studio export``: a library voice → a shareable voice pack zip and/or GPT-SoVITS's own model files."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from studio.commands.argtypes import positive


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a voice as a voice pack (.zip) and/or official GPT-SoVITS files",
        description="Write a voice from the library as a voice pack zip (manifest, weights, reference clips, "
        "consent record) and/or as GPT-SoVITS files (.ckpt + .pth + reference clips) that run in GPT-SoVITS. "
        "Exporting needs the speaker's confirmed consent: the one recorded with the voice, or the --speaker/"
        "--statement/--confirm-consent given here.",
    )
    p.add_argument(
        "--name",
        required=True,
        help="voice name in the library; a voice project whose training finished is added to the library first",
    )
    p.add_argument("--out", type=Path, default=None, metavar="ZIP", help="voice pack to write (e.g. voice.zip)")
    p.add_argument("--official", type=Path, default=None, metavar="DIR", help="also write official files into DIR")
    p.add_argument(
        "--epoch",
        type=positive,
        default=None,
        metavar="N",
        help="for a project: which compared epoch to use (default: the recommended one, see studio train)",
    )
    p.add_argument(
        "--run",
        dest="run_id",
        default=None,
        metavar="ID",
        help="for a project: the training run to export (default: the newest complete one; a partial run "
        "is exported only when named here)",
    )
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="base models folder (default: pretrained/)")
    p.add_argument("--speaker", default=None, help="consent: the name of the person whose voice this is")
    p.add_argument("--statement", default=None, help="consent: what the speaker agreed to")
    p.add_argument("--confirm-consent", action="store_true", help="I confirm the speaker agreed to sharing this voice")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio.errors import StudioError
    from studio.pretrained import PretrainedAssets
    from studio.services.voice_packs import VoicePackService
    from studio.voicepack import ConsentRecord

    if args.out is None and args.official is None:
        raise StudioError("Nothing to export.", hint="Give --out voice.zip and/or --official DIR.")
    consent = None
    if args.speaker or args.statement or args.confirm_consent:
        consent = ConsentRecord(
            args.speaker or "", args.statement or "", date.today().isoformat(), bool(args.confirm_consent)
        )
    service = VoicePackService(args.workspace, PretrainedAssets(args.pretrained) if args.pretrained else None)
    if args.name not in service.library.names() and _is_project(service.workspace_root, args.name):
        info = service.add_project_voice(args.name, consent, epoch=args.epoch, run_id=args.run_id)
        run = info.training.get("run_id")
        print(f"added the trained voice '{info.name}' from run {run} to the library ({_epoch_note(info, args.epoch)})")
    result = service.export_voice(args.name, args.out, official_dir=args.official, consent=consent)
    if result.pack is not None and result.manifest is not None:
        print(f"voice pack: {result.pack} ({result.manifest.weights.kind} weights)")
    if result.official_gpt is not None:
        print(f"GPT-SoVITS files: {result.official_gpt}, {result.official_sovits}")
    return 0


def _is_project(root: Path, name: str) -> bool:
    from studio.errors import WorkspaceError
    from studio.workspace import Workspace

    try:
        return Workspace(name, root).runs_dir.is_dir()
    except WorkspaceError:
        return False


def _epoch_note(info, asked: int | None) -> str:
    """Which epoch the new voice uses, in words."""
    chosen = info.training.get("epoch_choice") or {}
    if not isinstance(chosen.get("epoch"), int):
        return "its final weights"
    if chosen.get("recommended") and asked is None:
        which = f"the recommended epoch {chosen['epoch']}"
    elif asked is not None:
        which = f"epoch {chosen['epoch']}, as asked"
    else:
        which = f"the last epoch {chosen['epoch']} (this run's epochs were not compared)"
    return f"{which}: GPT epoch {chosen.get('gpt') or 'base'}, SoVITS epoch {chosen.get('sovits') or 'base'}"
