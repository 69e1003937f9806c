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

from studio.errors import DownloadError, MissingPretrainedError, StudioError

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
# v2Pro / v2ProPlus: upstream's names (the GPT s1v3 sits at the root; the SV model in sv/)
V2PRO_DIR = "v2Pro"
GPT_S1V3 = "s1v3.ckpt"
SOVITS_V2PRO = f"{V2PRO_DIR}/s2Gv2Pro.pth"
SOVITS_D_V2PRO = f"{V2PRO_DIR}/s2Dv2Pro.pth"
SOVITS_V2PROPLUS = f"{V2PRO_DIR}/s2Gv2ProPlus.pth"
SOVITS_D_V2PROPLUS = f"{V2PRO_DIR}/s2Dv2ProPlus.pth"
SV_DIR = "sv"
SV_CKPT = f"{SV_DIR}/pretrained_eres2netv2w24s4ep4.ckpt"

# speech recognition: faster-whisper (CTranslate2) models in pretrained/asr/<name>/; model.bin is fetched last, so
# a folder that has it got every other file first
ASR_DIR = "asr"
DEFAULT_ASR = "whisper-base"  # packaged with the 'asr-model' extra: the offline default
_WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "model.bin")
_WHISPER_V3_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "vocabulary.json", "model.bin")

BASE_VERSIONS = ("v2", "v2Pro", "v2ProPlus")
#: best first: what training starts from when no base is named (upstream recommends v2ProPlus)
BASE_PREFERENCE = ("v2ProPlus", "v2Pro", "v2")


@dataclass(frozen=True)
class PretrainedFile:
    """One file of the base models: where it lives below ``pretrained/`` and what it is for."""

    path: str
    purpose: str
    required: bool = True
    versions: tuple[str, ...] = BASE_VERSIONS  # the base versions that use it


@dataclass(frozen=True)
class BaseFiles:
    """The version-specific files of one base (relative paths); HuBERT and BERT are shared by all."""

    version: str
    gpt: str
    sovits: str
    discriminator: str
    speaker_verification: str | None = None  # v2Pro/v2ProPlus only


BASES: dict[str, BaseFiles] = {
    "v2": BaseFiles("v2", GPT_V2, SOVITS_V2, SOVITS_D_V2),
    "v2Pro": BaseFiles("v2Pro", GPT_S1V3, SOVITS_V2PRO, SOVITS_D_V2PRO, SV_CKPT),
    "v2ProPlus": BaseFiles("v2ProPlus", GPT_S1V3, SOVITS_V2PROPLUS, SOVITS_D_V2PROPLUS, SV_CKPT),
}

SHARED_FILES: tuple[PretrainedFile, ...] = (
    PretrainedFile(f"{HUBERT_DIR}/config.json", "content encoder (HuBERT) configuration"),
    PretrainedFile(f"{HUBERT_DIR}/preprocessor_config.json", "content encoder feature-extractor settings"),
    PretrainedFile(f"{HUBERT_DIR}/pytorch_model.bin", "content encoder weights"),
    PretrainedFile(f"{BERT_DIR}/config.json", "Chinese BERT configuration"),
    PretrainedFile(f"{BERT_DIR}/tokenizer.json", "Chinese BERT tokenizer"),
    PretrainedFile(f"{BERT_DIR}/pytorch_model.bin", "Chinese BERT weights"),
)
V2_FILES: tuple[PretrainedFile, ...] = SHARED_FILES + (
    PretrainedFile(GPT_V2, "base GPT (text-to-semantic) v2", versions=("v2",)),
    PretrainedFile(SOVITS_V2, "base SoVITS generator v2", versions=("v2",)),
    PretrainedFile(SOVITS_D_V2, "base SoVITS discriminator v2 (fine-tuning only)", required=False, versions=("v2",)),
)
_PRO = ("v2Pro", "v2ProPlus")
_PRO_GPT = PretrainedFile(GPT_S1V3, "base GPT (text-to-semantic) s1v3 for v2Pro/v2ProPlus", versions=_PRO)
_SV = PretrainedFile(SV_CKPT, "speaker-verification model (ERes2NetV2) for v2Pro/v2ProPlus", versions=_PRO)
V2PRO_FILES: tuple[PretrainedFile, ...] = SHARED_FILES + (
    _PRO_GPT,
    PretrainedFile(SOVITS_V2PRO, "base SoVITS generator v2Pro", versions=("v2Pro",)),
    PretrainedFile(SOVITS_D_V2PRO, "base SoVITS discriminator v2Pro (fine-tuning only)", False, ("v2Pro",)),
    _SV,
)
V2PROPLUS_FILES: tuple[PretrainedFile, ...] = SHARED_FILES + (
    _PRO_GPT,
    PretrainedFile(SOVITS_V2PROPLUS, "base SoVITS generator v2ProPlus", versions=("v2ProPlus",)),
    PretrainedFile(SOVITS_D_V2PROPLUS, "base SoVITS discriminator v2ProPlus (fine-tuning only)", False, ("v2ProPlus",)),
    _SV,
)
FILES_BY_VERSION: dict[str, tuple[PretrainedFile, ...]] = {
    "v2": V2_FILES,
    "v2Pro": V2PRO_FILES,
    "v2ProPlus": V2PROPLUS_FILES,
}
#: every known file once, shared ones first (the settings tab's table)
ALL_FILES: tuple[PretrainedFile, ...] = tuple(
    {f.path: f for files in FILES_BY_VERSION.values() for f in files}.values()
)


def files_for(version: str) -> tuple[PretrainedFile, ...]:
    """The files of one base version; an unknown name is refused with the known ones."""
    if version not in FILES_BY_VERSION:
        raise StudioError(f"Unknown base model version {version!r}.", hint=f"Use one of: {', '.join(BASE_VERSIONS)}.")
    return FILES_BY_VERSION[version]


@dataclass(frozen=True)
class BasePaths:
    """Absolute paths of one base version's files in a pretrained folder."""

    version: str
    gpt: Path
    sovits: Path
    discriminator: Path
    speaker_verification: Path | None


@dataclass(frozen=True)
class ASRModel:
    """A Whisper model the studio can fetch: its folder name below ``pretrained/asr/`` and its hub repository."""

    name: str  # "whisper-small"
    repo: str  # "Systran/faster-whisper-small"
    files: tuple[str, ...]
    size_mb: int  # download size, to show before fetching


ASR_MODELS: dict[str, ASRModel] = {
    f"whisper-{size}": ASRModel(f"whisper-{size}", f"Systran/faster-whisper-{size}", files, mb)
    for size, files, mb in (
        ("tiny", _WHISPER_FILES, 75),
        ("base", _WHISPER_FILES, 145),
        ("small", _WHISPER_FILES, 484),
        ("medium", _WHISPER_FILES, 1530),
        ("large-v3", _WHISPER_V3_FILES, 3090),
    )
}


def asr_model(name: str) -> ASRModel:
    """The catalogue entry for ``name`` (``small`` or ``whisper-small``); an unknown name is refused."""
    key = name if name.startswith("whisper-") else f"whisper-{name}"
    if key not in ASR_MODELS:
        known = ", ".join(n.removeprefix("whisper-") for n in ASR_MODELS)
        raise StudioError(f"Unknown Whisper model {name!r}.", hint=f"Use one of: {known}.")
    return ASR_MODELS[key]


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

    @property
    def sv_path(self) -> Path:
        """The speaker-verification checkpoint v2Pro/v2ProPlus voices need."""
        return self.root / SV_CKPT

    def base(self, version: str) -> BasePaths:
        """The files of base ``version`` (``v2``, ``v2Pro``, ``v2ProPlus``) in this folder."""
        files_for(version)  # refuses unknown names
        b = BASES[version]
        sv = self.root / b.speaker_verification if b.speaker_verification else None
        return BasePaths(version, self.root / b.gpt, self.root / b.sovits, self.root / b.discriminator, sv)

    def has_base(self, version: str) -> bool:
        """True when every required file of ``version`` is here."""
        return not self.missing(files_for(version))

    def best_base(self) -> str | None:
        """The best base whose required files are all present (v2ProPlus, then v2Pro, then v2), or None."""
        return next((v for v in BASE_PREFERENCE if self.has_base(v)), None)

    def missing_for_any_base(self) -> list[PretrainedFile]:
        """Nothing while some base version is complete (the studio can speak and train); else the absent files of
        the base closest to complete (fewest absent; the better base on a tie). Why not just the v2 files: a
        user with only a complete v2ProPlus base would be told, wrongly, that models are missing."""
        if self.best_base() is not None:
            return []
        gaps = [self.missing(files_for(v)) for v in BASE_PREFERENCE]
        return min(gaps, key=len)  # min keeps the first of equals: BASE_PREFERENCE is best first

    def missing(
        self, files: tuple[PretrainedFile, ...] = V2_FILES, *, required_only: bool = True
    ) -> list[PretrainedFile]:
        return [f for f in files if (f.required or not required_only) and not (self.root / f.path).is_file()]

    def status(self, files: tuple[PretrainedFile, ...] = V2_FILES) -> list[tuple[PretrainedFile, bool]]:
        """Every expected file of ``files`` and whether it is present (``ALL_FILES`` for every version)."""
        return [(f, (self.root / f.path).is_file()) for f in files]

    def require(self, paths: list[Path], version: str | None = None) -> None:
        """Raise :class:`MissingPretrainedError` listing every path in ``paths`` that does not exist (the hint
        names the download of ``version``, or of the version the missing files belong to)."""
        absent = [p for p in paths if not p.exists()]
        if absent:
            raise missing_error(absent, self.root, version)


def download_command(version: str | None) -> str:
    """The command that fetches a base version (plain ``studio download`` for v2)."""
    return "studio download" if version in (None, "v2") else f"studio download --version {version}"


def version_of_file(path: Path | str) -> str | None:
    """The base version a missing file belongs to, for the download hint: None for v2 and shared files;
    the SV model and s1v3 serve both Pro versions, and v2ProPlus is the one to recommend."""
    name = Path(path).as_posix()
    if name.endswith((SOVITS_V2PRO, SOVITS_D_V2PRO)):
        return "v2Pro"
    if name.endswith((SOVITS_V2PROPLUS, SOVITS_D_V2PROPLUS, SV_CKPT, f"/{GPT_S1V3}")) or name == GPT_S1V3:
        return "v2ProPlus"
    return None


def missing_error(absent: list[Path], root: Path, version: str | None = None) -> MissingPretrainedError:
    """One message listing every missing file, with the command that fetches them (``version`` or guessed)."""
    listing = "\n".join(f"  - {p}" for p in absent)
    version = version or next((v for v in map(version_of_file, absent) if v), None)
    return MissingPretrainedError(
        f"Base model files are missing:\n{listing}",
        hint=f"Run `{download_command(version)}` to fetch them into {root} (set HF_ENDPOINT to use a mirror), "
        "or copy your GPT-SoVITS `pretrained_models` folder there.",
        ui_hint="Open Models & Settings and press Download, or point the studio at a folder that has them.",
    )


# ----------------------------------------------------------------------------------------------- download


ProgressFn = Callable[[str, int, int], None]  # (file, bytes done, bytes total)


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def file_url(relpath: str, endpoint: str | None = None, repo: str = HF_REPO) -> str:
    quoted = urllib.request.quote(relpath)
    return f"{endpoint or _endpoint()}/{repo}/resolve/main/{quoted}"


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


def download_asr(
    name: str,
    root: Path | None = None,
    *,
    endpoint: str | None = None,
    on_progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch the Whisper model ``name`` into ``root/asr/<name>/`` the same way as the base models (resumable,
    checksum-verified where the hub gives one, ``HF_ENDPOINT`` honoured); files already there are kept."""
    model = asr_model(name)
    folder = (Path(root) if root else default_pretrained_dir()) / ASR_DIR / model.name
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for rel in model.files:
        target = folder / rel
        if not target.is_file():
            url = file_url(rel, endpoint, model.repo)
            _download_one(url, target, f"{ASR_DIR}/{model.name}/{rel}", on_progress, timeout)
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
        raise DownloadError(
            f"Could not download {name} from {url}: {exc}",
            hint="Check your connection, or set HF_ENDPOINT to a mirror (e.g. https://hf-mirror.com). "
            "Run the command again to resume.",
            ui_hint="Check your connection, or pick the mirror under “Download from”. "
            "Press Download again to resume where it stopped.",
        ) from exc
    if expected_sha and sha256_of(part) != expected_sha:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"Checksum mismatch for {name}: the download was corrupted.",
            hint="Run it again.",
            ui_hint="Press Download again.",
        )
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
