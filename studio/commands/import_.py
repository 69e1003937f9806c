"""``studio import``: a voice pack zip, an official .ckpt + .pth pair or a GSVI folder → a library voice."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import",
        help="add a voice from a voice pack, GPT-SoVITS files or a GSVI folder",
        description="Import a voice into the library: a voice pack (.zip), a GPT-SoVITS model pair (a .ckpt and a "
        ".pth, given as files or as their folder, with reference clips), or a GSVI-style folder (reference clips in "
        "language folders, transcript in the file name).",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="voice pack, folder, or .ckpt/.pth/clip files")
    p.add_argument("--name", default=None, help="name in the library (default: the pack's or the folder's name)")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="base models folder (default: pretrained/)")
    p.add_argument("--ref-text", default=None, help="transcript of the default reference clip (overrides)")
    p.add_argument("--ref-lang", default=None, help="language of the default reference clip (zh, en, ja, …)")
    p.add_argument("--overwrite", action="store_true", help="replace a voice of the same name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio.pretrained import PretrainedAssets
    from studio.services.voice_packs import VoicePackService

    service = VoicePackService(args.workspace, PretrainedAssets(args.pretrained) if args.pretrained else None)
    info = service.import_voice(
        args.paths, name=args.name, reference_text=args.ref_text, reference_lang=args.ref_lang, overwrite=args.overwrite
    )
    text = info.reference_text or "(no transcript: reference-free mode)"
    print(f"imported voice '{info.name}' into {info.folder}")
    print(f"default reference: [{info.reference_lang}] {text}; {len(info.references)} more clip(s)")
    return 0
