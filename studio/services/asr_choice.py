"""Which Whisper model transcription and take checks use: chosen in Models & Settings, kept in the workspace.

The packaged ``whisper-base`` stays the default and works offline. A larger model (``small`` … ``large-v3``)
hears noisy takes better; it is fetched into ``<pretrained>/asr/<name>/`` by the same resumable download as the
base models (:func:`studio.pretrained.download_asr`). The choice lives in ``<workspace>/settings.json``
(``"asr_model"``) beside the UI's other settings, so it holds after a restart; a model that is missing or only
partly downloaded is refused with what to do, and the previous choice stays.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from studio.pretrained import ASR_DIR, ASR_MODELS, DEFAULT_ASR, ASRModel, PretrainedAssets, asr_model
from studio.workspace import atomic_write_json

SETTINGS_FILE = "settings.json"  # shared with studio.ui.i18n.Preferences
KEY = "asr_model"


@dataclass(frozen=True)
class ASRModelState:
    model: ASRModel
    present: bool  # usable now (downloaded, or the packaged default)
    partial: bool  # a download was started and did not finish
    chosen: bool


class ASRChoice:
    """The workspace's Whisper model: read, set (only to a usable model), list, download."""

    def __init__(self, workspace_root: Path, pretrained: PretrainedAssets) -> None:
        self.settings_path = Path(workspace_root) / SETTINGS_FILE
        self.pretrained = pretrained
        self._lock = threading.Lock()

    @property
    def asr_dir(self) -> Path:
        return Path(self.pretrained.root) / ASR_DIR

    def _settings(self) -> dict:
        try:
            data = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def name(self) -> str:
        saved = self._settings().get(KEY)
        return saved if saved in ASR_MODELS else DEFAULT_ASR

    def path(self, name: str | None = None) -> Path:
        """The folder of model ``name`` (default: the chosen one), from the studio's models folder first, then
        from the default places (``pretrained/asr``, the packaged model). Raises ``ASRModelMissingError`` when
        it is missing or incomplete."""
        from studio.dataprep.transcribe import resolve_asr_model

        model = asr_model(name or self.name)
        if (self.asr_dir / model.name).is_dir():
            return resolve_asr_model(model.name, asr_dir=self.asr_dir)
        return resolve_asr_model(model.name)

    def choose(self, name: str) -> str:
        """Use ``name`` from now on (saved in the workspace); refused, changing nothing, unless it is usable."""
        model = asr_model(name)
        self.path(model.name)
        with self._lock:
            data = self._settings()
            data[KEY] = model.name
            atomic_write_json(self.settings_path, data)
        return model.name

    def states(self) -> list[ASRModelState]:
        from studio.errors import ASRModelMissingError

        chosen = self.name
        out = []
        for model in ASR_MODELS.values():
            folder = self.asr_dir / model.name
            try:
                self.path(model.name)
                present = True
            except ASRModelMissingError:
                present = False
            partial = not present and folder.is_dir() and any(folder.iterdir())
            out.append(ASRModelState(model, present, partial, model.name == chosen))
        return out

    def download(self, name: str, *, endpoint: str | None = None, on_progress=None) -> str:
        """Fetch ``name`` into the models folder (resuming a partial download), then choose it."""
        from studio.pretrained import download_asr

        download_asr(name, self.pretrained.root, endpoint=endpoint, on_progress=on_progress)
        return self.choose(name)
