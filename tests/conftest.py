"""Shared fixtures: where the golden files and test voices live."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from studio.inference.requests import SynthesisRequest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def golden_dir() -> Path:
    """The directory of upstream-computed fixtures (``STUDIO_GOLDEN_DIR`` overrides the default)."""
    return Path(os.environ.get("STUDIO_GOLDEN_DIR", SHARED / "golden")).resolve()


def spec_dir() -> Path:
    """The spec tables (symbol table, state-dict key lists): ``STUDIO_SPEC_DIR``, else ``../shared/spec``.

    Not looked up beside the golden directory: another golden directory of the same format carries no spec.
    """
    return Path(os.environ.get("STUDIO_SPEC_DIR", SHARED / "spec")).resolve()


def voices_dir() -> Path:
    return Path(os.environ.get("STUDIO_VOICES_DIR", SHARED / "voices")).resolve()


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Every cache the studio writes (weights caches, reference features) goes to a temporary folder, never
    the user's home nor beside the shared golden files (``STUDIO_WEIGHTS_CACHE=user``); a test of the
    "beside the original" placement sets ``auto`` itself, on copies in its own tmp folder."""
    saved = {name: os.environ.get(name) for name in ("STUDIO_CACHE_DIR", "STUDIO_WEIGHTS_CACHE")}
    os.environ["STUDIO_CACHE_DIR"] = str(tmp_path_factory.mktemp("studio_cache"))
    os.environ["STUDIO_WEIGHTS_CACHE"] = "user"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def golden() -> Path:
    path = golden_dir()
    if not path.is_dir():
        pytest.fail(f"golden directory not found: {path} (set STUDIO_GOLDEN_DIR)")
    return path


@pytest.fixture(scope="session")
def golden_v2pro() -> Path:
    """The v2Pro/v2ProPlus goldens (``STUDIO_GOLDEN_V2PRO_DIR``); skips when absent. Helpers: golden_v2pro_utils."""
    from golden_v2pro_utils import require_golden_v2pro

    return require_golden_v2pro()


@pytest.fixture(scope="session")
def voices() -> Path:
    path = voices_dir()
    if not path.is_dir():
        pytest.fail(f"voices directory not found: {path} (set STUDIO_VOICES_DIR)")
    return path


@pytest.fixture(scope="session")
def tiny_s1_ckpt(golden: Path) -> Path:
    """The tiny GPT checkpoint in the official WebUI export format."""
    return golden / "tiny_s1.ckpt"


@pytest.fixture(scope="session")
def tiny_s2_pth(golden: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SoVITS checkpoint, decompressed from its .xz next to the goldens."""
    import lzma

    plain = golden / "tiny_s2G.pth"
    if plain.is_file():
        return plain
    out = tmp_path_factory.mktemp("tiny_s2") / "tiny_s2G.pth"
    with lzma.open(golden / "tiny_s2G.pth.xz") as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return out


def build_tiny_pretrained(target: Path, golden: Path, s2_path: Path) -> Path:
    """A ``pretrained/`` folder in upstream's layout whose files are the tiny golden models (symlinks)."""
    from studio import pretrained as layout

    (target / layout.V2_DIR).mkdir(parents=True, exist_ok=True)
    links = {
        layout.GPT_V2: golden / "tiny_s1.ckpt",
        layout.SOVITS_V2: s2_path,
        layout.HUBERT_DIR: golden / "hf_tiny_hubert",
        layout.BERT_DIR: golden / "hf_tiny_bert",
    }
    for rel, src in links.items():
        dst = target / rel
        if not dst.exists():
            dst.symlink_to(src)
    return target


def tiny_pretrained_assets(root: Path, golden: Path, s2_path: Path):
    """:class:`studio.pretrained.PretrainedAssets` over a :func:`build_tiny_pretrained` folder at ``root``."""
    from studio.pretrained import PretrainedAssets

    return PretrainedAssets(build_tiny_pretrained(root, golden, s2_path))


def build_voice_workspace(root: Path, voices: Path, name: str, n_clips: int | None = None) -> Path:
    """A workspace at ``root`` whose voice ``name`` lists the first ``n_clips`` (all by default) clips of the
    ``en_joe`` test voice in its ``dataset.list`` (absolute paths); returns ``root``."""
    lines = (voices / "en_joe" / "dataset.list").read_text(encoding="utf-8").splitlines()[:n_clips]
    clips = voices / "en_joe"
    (root / name).mkdir(parents=True)
    text = "".join(f"{clips / line}\n" for line in lines)
    (root / name / "dataset.list").write_text(text, encoding="utf-8")
    return root


def build_tiny_v2proplus_pretrained(target: Path, golden: Path, unpack_dir: Path, *, with_sv: bool = True) -> Path:
    """A ``pretrained/`` folder holding only a complete v2ProPlus base, in upstream's layout: the tiny golden GPT as
    ``s1v3.ckpt``, the tiny v2ProPlus generator and (``with_sv``) the tiny speaker-verification checkpoint of
    ``golden_v2pro/``, the tiny HuBERT/BERT. No discriminator: training starts a fresh one, as it does without."""
    from golden_v2pro_utils import decompressed

    from studio import pretrained as layout

    links = {
        layout.GPT_S1V3: golden / "tiny_s1.ckpt",
        layout.SOVITS_V2PROPLUS: decompressed("tiny_s2G_v2ProPlus.pth.xz", unpack_dir),
        layout.HUBERT_DIR: golden / "hf_tiny_hubert",
        layout.BERT_DIR: golden / "hf_tiny_bert",
    }
    if with_sv:
        links[layout.SV_CKPT] = decompressed("tiny_sv_eres2netv2.ckpt.xz", unpack_dir)
    for rel, src in links.items():
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.symlink_to(src)
    return target


@pytest.fixture(scope="session")
def tiny_v2proplus_pretrained(golden: Path, golden_v2pro: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base models = a tiny v2ProPlus base (see :func:`build_tiny_v2proplus_pretrained`)."""
    unpack = tmp_path_factory.mktemp("v2pro_unpacked")
    return build_tiny_v2proplus_pretrained(tmp_path_factory.mktemp("pretrained_v2proplus"), golden, unpack)


@pytest.fixture(scope="session")
def tiny_pretrained(golden: Path, tiny_s2_pth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base models = the tiny golden checkpoints, in the official folder layout."""
    return build_tiny_pretrained(tmp_path_factory.mktemp("pretrained"), golden, tiny_s2_pth)


@pytest.fixture(scope="session")
def reference(voices: Path) -> tuple[Path, str]:
    """An English clip of ../shared/voices/en_joe and its transcript."""
    import csv

    with open(voices / "en_joe" / "metadata.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    return voices / "en_joe" / row["file"], row["text"]


@pytest.fixture
def request_(reference: tuple[Path, str]) -> SynthesisRequest:
    """Two short English sentences spoken after ``reference``, capped at 40 tokens each, seed 1234."""
    from studio.inference.requests import SynthesisRequest

    clip, text = reference
    return SynthesisRequest(
        text="Good morning. The weather is lovely today!",
        lang="en",
        reference=clip,
        ref_text=text,
        ref_lang="en",
        split="cut5",
        seed=1234,
        max_tokens_per_sentence=40,  # random tiny weights rarely emit EOS: keep the test fast
    )
