"""Which base model files go where in ``pretrained/``, how to check them, and how to fetch them.

The folder layout and file names are upstream's (``GPT_SoVITS/pretrained_models/``), so a user can copy
an existing GPT-SoVITS folder in as it is. Nothing here runs at import time, and tests never download:
:func:`download` is only called by ``studio download``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import MissingPretrainedError, StudioError

_LOGGER = logging.getLogger(__name__)

HF_REPO = "lj1995/GPT-SoVITS"
DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_ROOT = Path(__file__).resolve().parents[1]

HUBERT_DIR = "chinese-hubert-base"
BERT_DIR = "chinese-roberta-wwm-ext-large"
V2_DIR = "gsv-v2final-pretrained"
GPT_V2 = f"{V2_DIR}/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
SOVITS_V2 = f"{V2_DIR}/s2G2333k.pth"
SOVITS_D_V2 = f"{V2_DIR}/s2D2333k.pth"


@dataclass(frozen=True)
class PretrainedFile:
    """One file of the base models: where it lives below ``pretrained/`` and what it is for."""

    path: str
    purpose: str
    required: bool = True


V2_FILES: tuple[PretrainedFile, ...] = (
    PretrainedFile(f"{HUBERT_DIR}/config.json", "content encoder (HuBERT) configuration"),
    PretrainedFile(f"{HUBERT_DIR}/preprocessor_config.json", "content encoder feature-extractor settings"),
    PretrainedFile(f"{HUBERT_DIR}/pytorch_model.bin", "content encoder weights"),
    PretrainedFile(f"{BERT_DIR}/config.json", "Chinese BERT configuration"),
    PretrainedFile(f"{BERT_DIR}/tokenizer.json", "Chinese BERT tokenizer"),
    PretrainedFile(f"{BERT_DIR}/pytorch_model.bin", "Chinese BERT weights"),
    PretrainedFile(GPT_V2, "base GPT (text-to-semantic) v2"),
    PretrainedFile(SOVITS_V2, "base SoVITS generator v2"),
    PretrainedFile(SOVITS_D_V2, "base SoVITS discriminator v2 (fine-tuning only)", required=False),
)


def default_pretrained_dir() -> Path:
    """``$STUDIO_PRETRAINED`` if set, else ``pretrained/`` beside the package."""
    env = os.environ.get("STUDIO_PRETRAINED")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "pretrained"


@dataclass
class PretrainedAssets:
    """The base models in one folder of upstream's layout."""

    root: Path = field(default_factory=default_pretrained_dir)

    @property
    def hubert_dir(self) -> Path:
        return self.root / HUBERT_DIR

    @property
    def bert_dir(self) -> Path:
        return self.root / BERT_DIR

    @property
    def gpt_path(self) -> Path:
        return self.root / GPT_V2

    @property
    def sovits_path(self) -> Path:
        return self.root / SOVITS_V2

    @property
    def sovits_discriminator_path(self) -> Path:
        return self.root / SOVITS_D_V2

    def missing(self, files: tuple[PretrainedFile, ...] = V2_FILES, *, required_only: bool = True) -> list[PretrainedFile]:
        return [f for f in files if (f.required or not required_only) and not (self.root / f.path).is_file()]

    def status(self) -> list[tuple[PretrainedFile, bool]]:
        """Every expected file and whether it is present (for the settings tab)."""
        return [(f, (self.root / f.path).is_file()) for f in V2_FILES]

    def require(self, paths: list[Path]) -> None:
        """Raise :class:`MissingPretrainedError` listing every path in ``paths`` that does not exist."""
        absent = [p for p in paths if not p.exists()]
        if absent:
            raise missing_error(absent, self.root)


def missing_error(absent: list[Path], root: Path) -> MissingPretrainedError:
    listing = "\n".join(f"  - {p}" for p in absent)
    return MissingPretrainedError(
        f"Base model files are missing:\n{listing}",
        hint=f"Run `studio download` to fetch them into {root} (set HF_ENDPOINT to use a mirror), "
        "or copy your GPT-SoVITS `pretrained_models` folder there.",
    )


# ----------------------------------------------------------------------------------------------- download


ProgressFn = Callable[[str, int, int], None]  # (file, bytes done, bytes total)


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def file_url(relpath: str, endpoint: str | None = None) -> str:
    quoted = urllib.request.quote(relpath)
    return f"{endpoint or _endpoint()}/{HF_REPO}/resolve/main/{quoted}"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(
    root: Path | None = None,
    files: tuple[PretrainedFile, ...] = V2_FILES,
    *,
    endpoint: str | None = None,
    on_progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch every missing base file into ``root``; resumable (``.part`` files) and checksum-verified.

    The expected sha256 comes from the hub's ``X-Linked-ETag``/``ETag`` header (Git-LFS files are
    addressed by their sha256); small non-LFS files are verified by their size.
    """
    root = Path(root) if root else default_pretrained_dir()
    fetched: list[Path] = []
    for item in files:
        target = root / item.path
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _download_one(file_url(item.path, endpoint), target, item.path, on_progress, timeout)
        fetched.append(target)
    return fetched


def _download_one(url: str, target: Path, name: str, on_progress: ProgressFn | None, timeout: float) -> None:
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "sovits-studio"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if done and response.status != 206:  # server ignored the range: start again
                done = 0
            expected_sha = _expected_sha256(response.headers)
            total = done + int(response.headers.get("Content-Length", 0) or 0)
            with open(part, "ab" if done else "wb") as out:
                while block := response.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if on_progress:
                        on_progress(name, done, total)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise StudioError(
            f"Could not download {name} from {url}: {exc}",
            hint="Check your connection, or set HF_ENDPOINT to a mirror (e.g. https://hf-mirror.com). "
            "Run the command again to resume.",
        ) from exc
    if expected_sha and sha256_of(part) != expected_sha:
        part.unlink(missing_ok=True)
        raise StudioError(f"Checksum mismatch for {name}: the download was corrupted.", hint="Run it again.")
    os.replace(part, target)
    _LOGGER.info("downloaded %s", target)


def _expected_sha256(headers) -> str | None:
    for key in ("X-Linked-ETag", "ETag"):
        value = (headers.get(key) or "").strip().strip('"')
        if value.startswith("W/"):
            value = value[2:].strip('"')
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value
    return None
