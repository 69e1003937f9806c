"""``studio download``: fetch the official base models of one version into ``pretrained/``."""

from __future__ import annotations

import argparse
from pathlib import Path

VERSION_CHOICES = ("v2", "v2Pro", "v2ProPlus", "all")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "download",
        help="download the official GPT-SoVITS base models (v2, v2Pro or v2ProPlus)",
        description="Fetch the official base models of one version into pretrained/ (resumable, checksum-verified), "
        "in upstream's folder layout. v2Pro/v2ProPlus add the s1v3 GPT, their SoVITS generator and the "
        "speaker-verification model. Set HF_ENDPOINT to use a mirror, e.g. HF_ENDPOINT=https://hf-mirror.com.",
    )
    p.add_argument("--pretrained", type=Path, default=None, help="target folder (default: pretrained/)")
    p.add_argument("--endpoint", default=None, help="hub address (default: $HF_ENDPOINT or huggingface.co)")
    p.add_argument(
        "--version",
        choices=VERSION_CHOICES,
        default="v2",
        help="which base to fetch (default v2; v2ProPlus is upstream's best; 'all' fetches every version)",
    )
    p.add_argument(
        "--with-discriminator", action="store_true", help="also fetch the SoVITS discriminator (for fine-tuning)"
    )
    p.set_defaults(run=run)


def selected_files(version: str, with_discriminator: bool):
    """The files ``--version`` names (each once), the optional discriminators only when asked for."""
    from studio.pretrained import ALL_FILES, files_for

    files = ALL_FILES if version == "all" else files_for(version)
    return tuple(f for f in files if f.required or with_discriminator)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from studio.pretrained import PretrainedAssets, download

    assets = PretrainedAssets(args.pretrained) if args.pretrained else PretrainedAssets()
    files = selected_files(args.version, args.with_discriminator)
    todo = assets.missing(files, required_only=False)
    if not todo:
        print(f"All {args.version} base models are present in {assets.root}.")
        return 0
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name) or bars.setdefault(name, tqdm(total=total or None, unit="B", unit_scale=True, desc=name))
        bar.update(done - bar.n)

    fetched = download(assets.root, files, endpoint=args.endpoint, on_progress=progress)
    for bar in bars.values():
        bar.close()
    print(f"Downloaded {len(fetched)} file(s) into {assets.root}.")
    return 0
