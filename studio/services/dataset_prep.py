"""Dataset preparation use cases, shared by the CLI, the UI and the HTTP API.

A thin facade: it owns the (slow to load) speech recogniser so that several runs reuse one model, and
gives each caller the same entry points for preparing, proofreading, linting and picking a reference.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from studio.corpus import DatasetEntry, read_list
from studio.dataprep.lint import LintReport, ReferencePick, lint_dataset, pick_reference
from studio.dataprep.pipeline import PrepOptions, PrepReport, run_prep
from studio.dataprep.proofread import Proofreader
from studio.dataprep.transcribe import Transcriber, WhisperTranscriber
from studio.errors import DatasetError
from studio.workspace import Workspace, default_workspace_root, list_workspaces

_LOGGER = logging.getLogger(__name__)
ProgressFn = Callable[[str, float, str], None]


class DatasetPrepService:
    """Prepare and curate voice datasets in ``workspace_root`` (default: ``workspace/``)."""

    def __init__(self, workspace_root: Path | None = None, transcriber: Transcriber | None = None) -> None:
        self.workspace_root = Path(workspace_root) if workspace_root else default_workspace_root()
        self._transcriber = transcriber
        self._transcriber_model: str | None = "injected" if transcriber is not None else None
        self._lock = threading.Lock()
        self.asr = None  # studio.services.asr_choice.ASRChoice: the model chosen in Models & Settings, if any

    def workspace(self, name: str) -> Workspace:
        return Workspace(name, self.workspace_root)

    def projects(self) -> list[str]:
        return [w.name for w in list_workspaces(self.workspace_root)]

    def transcriber(self, model: str | None = None) -> Transcriber:
        """The recogniser for ``model`` (loaded once and reused while the same model is asked for); no
        ``model``: the one chosen in Models & Settings (the packaged base model unless another was chosen)."""
        if model is None and self.asr is not None and self._transcriber_model != "injected":
            model = str(self.asr.path())
        with self._lock:
            if self._transcriber is None or (model is not None and model != self._transcriber_model):
                self._transcriber = WhisperTranscriber(model)
                self._transcriber_model = model
            return self._transcriber

    def last_report(self, name: str) -> dict | None:
        """The saved report of the project's last preparation (``reports/prep.json``), or None: what the Prepare
        tab shows again after a page reload (its summary line, the denoise strength used)."""
        import json

        from studio.errors import StudioError

        try:
            data = json.loads(Workspace(name, self.workspace_root).prep_report.read_text(encoding="utf-8"))
        except (OSError, ValueError, StudioError):
            return None
        return data if isinstance(data, dict) else None

    def prepare(
        self,
        inputs: Sequence[Path | str],
        name: str,
        options: PrepOptions | None = None,
        on_progress: ProgressFn | None = None,
    ) -> PrepReport:
        """import → clean → slice → transcribe → lint ``inputs`` into project ``name``."""
        opts = options or PrepOptions()
        workspace = self.workspace(name)
        transcriber = self.transcriber(opts.asr_model) if opts.transcribe else None
        return run_prep(inputs, workspace, opts, transcriber=transcriber, on_progress=on_progress)

    def entries(self, name: str) -> list[DatasetEntry]:
        workspace = self.workspace(name)
        if not workspace.dataset_list.is_file():
            raise DatasetError(
                f"Project {name!r} has no dataset list yet.",
                hint="Run `studio prep` first.",
                ui_hint="Prepare the recordings in the Prepare tab first.",
            )
        return read_list(workspace.dataset_list)

    def proofreader(self, name: str) -> Proofreader:
        return Proofreader(self.workspace(name))

    def lint(self, name: str) -> tuple[LintReport, ReferencePick | None]:
        """Re-check the project's list as it is now (after proofreading), with the stored ASR confidences and
        what import measured on the original takes."""
        from studio.dataprep.pipeline import SOURCES_FILE
        from studio.dataprep.quality import SourceFacts

        workspace = self.workspace(name)
        entries = self.entries(name)
        asr = _read_json(workspace.asr_report)
        facts = SourceFacts.from_sources(_read_json(workspace.reports_dir / SOURCES_FILE))
        report = lint_dataset(entries, asr, sources=facts)
        return report, pick_reference(entries, report, asr)

    def asr_confidence(self, name: str) -> dict[str, dict]:
        """The recogniser's per-clip record (text, confidences, second listen), by clip name."""
        return _read_json(self.workspace(name).asr_report)


def _read_json(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
