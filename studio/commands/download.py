"""``studio download``: fetch the official base models of one version into ``pretrained/``, or with ``--asr`` a
Whisper model for transcription into ``pretrained/asr/whisper-<size>/``."""

from __future__ import annotations

import argparse
from pathlib import Path

VERSION_CHOICES = ("v2", "v2Pro", "v2ProPlus", "all")
ASR_SIZES = ("tiny", "base", "small", "medium", "large-v3")


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
    p.add_argument(
        "--asr",
        metavar="SIZE",
        choices=ASR_SIZES,
        default=None,
        help="instead of base models, fetch the faster-whisper model of this size (tiny, base, small, medium, "
        "large-v3) for transcription; use it with `studio prep --asr-model SIZE` or choose it in Models & Settings",
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
    if args.asr:
        return _download_asr(args, assets.root)
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


def _download_asr(args: argparse.Namespace, root: Path) -> int:
    from tqdm import tqdm

    from studio.pretrained import ASR_DIR, asr_model, download_asr

    model = asr_model(args.asr)
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name) or bars.setdefault(name, tqdm(total=total or None, unit="B", unit_scale=True, desc=name))
        bar.update(done - bar.n)

    print(f"Fetching {model.name} ({model.repo}, about {model.size_mb} MB) into {root / ASR_DIR / model.name}.")
    fetched = download_asr(model.name, root, endpoint=args.endpoint, on_progress=progress)
    for bar in bars.values():
        bar.close()
    print(
        f"{model.name}: {len(fetched)} file(s) downloaded, complete. Use it with `studio prep --asr-model "
        f"{args.asr}` or choose it in the studio's Models & Settings."
    )
    return 0
