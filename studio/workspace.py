"""The one definition of a voice project's folder, ``workspace/<name>/``, and atomic file writes.

Layout (see ``workspace/README.md``)::

    workspace/<name>/
        raw/            untouched copies of the imported recordings
        clean/          cleaned, loudness-normalised mono WAVs (one per raw file)
        slices/         training clips ``<source>_<start>_<end>.wav`` (sample offsets in the clean file)
        dataset.list    upstream's ``path|speaker|LANG|text`` list of the slices
        reports/        JSON reports of the last preparation (prep, lint, ASR confidences)
        features/       training features (written by training)
        runs/           training runs
        exports/        exported voice packs

Every file that a later step trusts is written with :func:`atomic_write_bytes` (temp file in the same
folder, fsync, ``os.replace``), so a crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import WorkspaceError

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_NAME_CHARS = 64
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
    | {f"COM{c}" for c in "¹²³"}
    | {f"LPT{c}" for c in "¹²³"}
)
_FORBIDDEN_CHARS = frozenset('<>:"/\\|?*')


def default_workspace_root() -> Path:
    """``$STUDIO_WORKSPACE`` if set, else ``workspace/`` beside the package."""
    env = os.environ.get("STUDIO_WORKSPACE")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "workspace"


# Folders beside the projects that belong to the whole studio, so no project may take their names.
PRONUNCIATIONS_FILE = "pronunciations.txt"  # the user's own pronunciations, for every project
STUDIO_FOLDERS = frozenset({"voices", "takes", PRONUNCIATIONS_FILE})  # names the studio uses beside the projects


def validate_name(name: str) -> str:
    """Return the NFC-normalised project name, or raise :class:`WorkspaceError` if it cannot be a folder name.

    Unicode letters are fine (``"小明的声音"``, ``"Zoë"``); what is refused works badly on some system:
    path separators and ``..``, Windows' reserved names (``CON``, ``nul.txt``, ``COM1``), the characters
    ``<>:"/\\|?*``, control characters, leading/trailing spaces or dots, and names over 64 characters.
    """
    if not isinstance(name, str):
        raise WorkspaceError(f"A project name must be text, not {type(name).__name__}.")
    cleaned = unicodedata.normalize("NFC", name)
    hint = "Use letters, digits, spaces, '-' or '_', e.g. 'my-voice'."
    if not cleaned.strip():
        raise WorkspaceError("The project name is empty.", hint=hint)
    if cleaned != cleaned.strip() or cleaned.endswith("."):
        raise WorkspaceError(f"The project name {name!r} starts or ends with a space or ends with a dot.", hint=hint)
    if cleaned in {".", ".."} or cleaned.startswith("."):
        raise WorkspaceError(f"The project name {name!r} may not start with a dot.", hint=hint)
    bad = sorted({c for c in cleaned if c in _FORBIDDEN_CHARS or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise WorkspaceError(f"The project name {name!r} contains characters that are not allowed: {shown}.", hint=hint)
    if cleaned.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        raise WorkspaceError(f"The project name {name!r} is a reserved device name on Windows.", hint=hint)
    if len(cleaned) > MAX_NAME_CHARS:
        raise WorkspaceError(f"The project name is {len(cleaned)} characters long; the limit is {MAX_NAME_CHARS}.")
    return cleaned


@dataclass(frozen=True)
class Workspace:
    """One voice project's folder. Other layers add their folders as properties here, nowhere else."""

    name: str
    root: Path = field(default_factory=default_workspace_root)

    def __post_init__(self) -> None:
        name = validate_name(self.name)
        if name.casefold() in STUDIO_FOLDERS:
            raise WorkspaceError(
                f"{name!r} is a name the studio itself uses in the workspace; a voice project can't use it.",
                hint="Pick another name.",
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    # ---- layout -------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def raw_dir(self) -> Path:
        return self.dir / "raw"

    @property
    def clean_dir(self) -> Path:
        return self.dir / "clean"

    @property
    def slices_dir(self) -> Path:
        return self.dir / "slices"

    @property
    def dataset_list(self) -> Path:
        return self.dir / "dataset.list"

    @property
    def reports_dir(self) -> Path:
        return self.dir / "reports"

    @property
    def prep_report(self) -> Path:
        return self.reports_dir / "prep.json"

    @property
    def lint_report(self) -> Path:
        return self.reports_dir / "lint.json"

    @property
    def asr_report(self) -> Path:
        """Per-slice ASR confidences (language probability, average log-probability), keyed by file name."""
        return self.reports_dir / "asr.json"

    @property
    def features_dir(self) -> Path:
        return self.dir / "features"

    @property
    def runs_dir(self) -> Path:
        return self.dir / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.dir / "exports"

    @property
    def recordings_dir(self) -> Path:
        """Takes recorded or uploaded in the studio, before they are prepared."""
        return self.dir / "recordings"

    @property
    def history_dir(self) -> Path:
        """Undo journal of proofreading operations (and the files they removed)."""
        return self.dir / ".history"

    # ---- helpers ------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.dir.is_dir()

    def ensure(self) -> Workspace:
        """Create the project folder and its data-preparation sub-folders; return ``self``."""
        for folder in (self.raw_dir, self.clean_dir, self.slices_dir, self.reports_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def staging_dir(self) -> Path:
        """A fresh hidden folder inside the project (same file system, so ``os.replace`` is atomic)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".staging-", dir=self.dir))

    def contains(self, path: Path) -> bool:
        try:
            Path(path).resolve().relative_to(self.dir)
        except ValueError:
            return False
        return True


def list_workspaces(root: Path | None = None) -> list[Workspace]:
    """The valid project folders under ``root`` (default: :func:`default_workspace_root`), sorted by name."""
    base = Path(root) if root else default_workspace_root()
    found = []
    for child in sorted(base.iterdir()) if base.is_dir() else []:
        if child.is_dir() and not child.name.startswith(".") and child.name.casefold() not in STUDIO_FOLDERS:
            try:
                found.append(Workspace(child.name, base))
            except WorkspaceError:
                continue
    return found


# ---- atomic writes --------------------------------------------------------------------------------
def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: Path | str, obj: Any, indent: int | None = 2) -> Path:
    text = json.dumps(obj, ensure_ascii=False, indent=indent, default=_json_default)
    return atomic_write_text(path, text + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
