"""The one object a front end (studio UI, HTTP API, CLI) holds: settings plus every service.

Built once per process. Services are created on first use, so starting the UI imports no model code.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from studio.pretrained import PretrainedAssets
from studio.settings import StudioSettings


class Studio:
    """Settings + services, each created lazily and shared by every caller."""

    def __init__(
        self, settings: StudioSettings | None = None, *, hubert_dir: Path | None = None, bert_dir: Path | None = None
    ) -> None:
        self.settings = settings or StudioSettings()
        self._hubert_dir = hubert_dir
        self._bert_dir = bert_dir

    @property
    def workspace_root(self) -> Path:
        return Path(self.settings.workspace)

    @cached_property
    def pretrained(self) -> PretrainedAssets:
        return PretrainedAssets(Path(self.settings.pretrained))

    def use_pretrained(self, folder: Path | str) -> Path:
        """Point every service at another folder of base models (e.g. an existing GPT-SoVITS
        ``pretrained_models``); refused, changing nothing, unless it holds at least one known base file."""
        from studio.errors import MissingPretrainedError
        from studio.pretrained import ALL_FILES

        path = Path(str(folder).strip()).expanduser()
        if not str(folder).strip() or not path.is_dir():
            raise MissingPretrainedError(f"There is no folder {str(folder).strip() or '(empty)'!r}.")
        path = path.resolve()
        if not any((path / f.path).is_file() for f in ALL_FILES):
            raise MissingPretrainedError(
                f"The folder {path.name!r} holds none of the base model files.",
                hint="Choose the folder that contains chinese-hubert-base/ and gsv-v2final-pretrained/.",
            )
        self.settings.pretrained = path
        self.pretrained.root = path  # shared by the training and voice-pack services
        self.__dict__.pop("synthesis", None)  # models loaded from the old folder are dropped
        self.__dict__.pop("takes", None)
        return path

    def set_precision(self, mode: str) -> str:
        """Use ``mode`` (auto | fp32 | bf16 | int8) from the next synthesis on; loaded voices are dropped."""
        from studio.errors import StudioError
        from studio.models.precision import check_mode

        try:
            mode = check_mode(mode, allow_auto=True)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        if mode != self.settings.precision:
            self.settings.precision = mode
            self.__dict__.pop("synthesis", None)
            self.__dict__.pop("takes", None)
        return mode

    @cached_property
    def device(self) -> str:
        return self.settings.resolved_device()

    @cached_property
    def synthesis(self):
        from studio.services.synthesis import SynthesisService

        return SynthesisService(
            self.pretrained,
            device=self.device,
            hubert_dir=self._hubert_dir,
            bert_dir=self._bert_dir,
            precision=self.settings.precision,
        )

    @cached_property
    def voices(self):
        from studio.services.voices import VoiceLibrary

        return VoiceLibrary(self.workspace_root)

    @cached_property
    def asr(self):
        """The Whisper model chosen in Models & Settings (transcription and take checks use it)."""
        from studio.services.asr_choice import ASRChoice

        return ASRChoice(self.workspace_root, self.pretrained)

    @cached_property
    def datasets(self):
        from studio.services.dataset_prep import DatasetPrepService

        service = DatasetPrepService(self.workspace_root)
        service.asr = self.asr
        return service

    @cached_property
    def training(self):
        from studio.services.training import TrainingService

        return TrainingService(self.workspace_root, self.pretrained, device=self.device)

    @cached_property
    def voice_packs(self):
        from studio.services.voice_packs import VoicePackService

        return VoicePackService(self.workspace_root, self.pretrained)

    @cached_property
    def pronunciations(self):
        """The user's own pronunciations (``<workspace>/pronunciations.txt``)."""
        from studio.services.pronunciations import PronunciationService

        return PronunciationService(self.workspace_root)

    @cached_property
    def takes(self):
        """Generate / check / compare takes (stored in ``<workspace>/takes``)."""
        from studio.services.take_qa import TakeChecker
        from studio.services.takes import TakeService, TakeStore

        checker = TakeChecker(lambda: self.datasets.transcriber())
        store = TakeStore(self.workspace_root / "takes")
        return TakeService(store, lambda: self.synthesis, self.voices, checker, self.pronunciations.lexicon)

    def script_services(self) -> dict:
        """What a :class:`~studio.services.scripts.render.ScriptRenderer` needs: this studio's synthesis, voices,
        take checker and pronunciations (``ScriptRenderer.create(folder, script, cast, settings, **these)``)."""
        return {
            "synthesis": self.synthesis,
            "voices": self.voices,
            "checker": self.takes.checker,
            "lexicon": self.pronunciations.lexicon,
        }

    @property
    def scripts_dir(self) -> Path:
        """Where the studio keeps script renders (``<workspace>/scripts/<id>``)."""
        return self.workspace_root / "scripts"

    @cached_property
    def recording(self):
        from studio.services.recording import RecordingService

        return RecordingService(self.workspace_root)
