"""``studio download``: fetch the official v2 base models into ``pretrained/``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "download",
        help="download the official GPT-SoVITS v2 base models",
        description="Fetch the official v2 base models into pretrained/ (resumable, checksum-verified). "
        "Set HF_ENDPOINT to use a mirror, e.g. HF_ENDPOINT=https://hf-mirror.com.",
    )
    p.add_argument("--pretrained", type=Path, default=None, help="target folder (default: pretrained/)")
    p.add_argument("--endpoint", default=None, help="hub address (default: $HF_ENDPOINT or huggingface.co)")
    p.add_argument("--with-discriminator", action="store_true", help="also fetch s2D (needed for full fine-tuning)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from studio.pretrained import V2_FILES, PretrainedAssets, download

    assets = PretrainedAssets(args.pretrained) if args.pretrained else PretrainedAssets()
    files = tuple(f for f in V2_FILES if f.required or args.with_discriminator)
    todo = assets.missing(files, required_only=False)
    if not todo:
        print(f"All base models are present in {assets.root}.")
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
