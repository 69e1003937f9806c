"""Sharing voices: training run → library voice, library voice → voice pack / official files, and imports.

Use cases (the CLI verbs ``studio export`` / ``studio import`` and the UI call these):

* :meth:`VoicePackService.register_trained_voice` — merge a finished run's weights into official-format files and
  add them to the :class:`~studio.services.voices.VoiceLibrary` with the chosen reference clip and consent record.
* :meth:`VoicePackService.export_voice` — a library voice → a voice pack zip (adapters when the training run is
  still there and its base files match, otherwise the merged weights) and/or the official files in a folder.
* :meth:`VoicePackService.import_voice` — a voice pack zip, an official ``.ckpt`` + ``.pth`` pair or a GSVI folder
  → a new library voice. A refused import leaves the library exactly as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio.errors import StudioError, TrainingError, VoicePackError, WorkspaceError
from studio.pretrained import PretrainedAssets, download_command
from studio.services.voices import VoiceInfo, VoiceLibrary, VoiceNotFoundError
from studio.settings import default_workspace_dir
from studio.training.run_layout import STAGES, RunPaths, read_json
from studio.voicepack import ConsentRecord, FileRef, VoiceManifest, open_voicepack, sha256_file
from studio.voicepack.build import (
    base_identity,
    build_lora_pack,
    build_merged_pack,
    confirmed_consent,
    pack_to_official,
)
from studio.voicepack.official import (
    FoundReference,
    OfficialStage,
    export_official_folder,
    merged_gpt,
    merged_sovits,
    official_weights,
    scan_official_source,
    stage_from_weights,
    write_official,
)
from studio.workspace import Workspace, validate_name

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What :meth:`VoicePackService.export_voice` wrote."""

    pack: Path | None
    manifest: VoiceManifest | None
    official_gpt: Path | None = None
    official_sovits: Path | None = None


@dataclass(frozen=True)
class _RunStage:
    mode: str  # "lora" | "full" | "base" (not trained in this run)
    base: Path
    weights: Path | None
    lora: dict | None
    upstream_config: dict
    epochs: int
    steps: int


def newest_complete_run(ws: Workspace) -> str:
    """The newest run that trained every planned step; a newer partial run (``--max-steps``, a trial) is only
    exported when named, so a two-step trial never silently replaces a real voice."""
    from studio.training.run_layout import partial_stages

    finished = sorted(p.parent.name for p in ws.runs_dir.glob("*/result.json")) if ws.runs_dir.is_dir() else []
    if not finished:
        raise TrainingError(
            f"The project '{ws.name}' has no finished training run.",
            hint=f"Train it first: studio train --name {ws.name}",
            ui_hint="Train it in the Train tab first.",
        )
    partial = {}
    for run_id in reversed(finished):
        short = partial_stages(read_json(ws.runs_dir / run_id / "result.json") or {})
        if not short:
            return run_id
        partial[run_id] = short
    newest, short = finished[-1], partial[finished[-1]]
    detail = ", ".join(f"{stage} {done} of {planned} steps" for stage, (done, planned) in short.items())
    raise TrainingError(
        f"The project '{ws.name}' has only partial training runs; the newest, {newest}, stopped early ({detail}).",
        hint=f"Train to the end, or export it anyway with --run {newest}.",
        ui_hint="Train to the end first.",
    )


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _consent_record(data: Any) -> ConsentRecord | None:
    if isinstance(data, ConsentRecord):
        return data
    if not isinstance(data, dict):
        return None
    return ConsentRecord(
        str(data.get("speaker_name", "")), str(data.get("statement", "")), str(data.get("date", "")),
        data.get("confirmed") is True,
    )  # fmt: skip


def _as_wav(path: Path, folder: Path) -> Path:
    """``path`` itself when it is a WAV, else a 32 kHz WAV decoded from it into ``folder``."""
    if path.suffix.lower() == ".wav":
        return path
    from studio.audio.io import load_audio, save_wav

    audio, rate = load_audio(path)
    return save_wav(folder / f"{path.stem[:40]}.wav", audio, rate)


class VoicePackService:
    """Export, import and registration of voices; every result lands in (or comes from) the voice library."""

    def __init__(self, workspace_root: Path | None = None, pretrained: PretrainedAssets | None = None) -> None:
        self.workspace_root = Path(workspace_root) if workspace_root else default_workspace_dir()
        self.pretrained = pretrained or PretrainedAssets()
        self.library = VoiceLibrary(self.workspace_root)

    # ------------------------------------------------------------------------------------------ training runs

    def _base_path(self, stage: str, recorded: Any, version: str = "v2") -> Path:
        """The base file of a run stage: the recorded path if it still holds the recorded file, else the file of
        base ``version`` in pretrained/."""
        recorded = recorded if isinstance(recorded, dict) else {}
        base = self.pretrained.base(version)
        default = base.gpt if stage == "gpt" else base.sovits
        sha = recorded.get("sha256")
        candidates = [Path(recorded["path"])] if isinstance(recorded.get("path"), str) else []
        for path in [*candidates, default]:
            if path.is_file() and (not sha or sha256_file(path) == sha):
                return path
        raise VoicePackError(
            f"The base {stage} model this run was trained on is missing or changed "
            f"(expected {recorded.get('path') or default}).",
            hint=f"Restore the base model files in pretrained/ ({download_command(version)}).",
            ui_hint="Open Models & Settings and press Download to restore the base model files.",
        )

    def _read_run(
        self, workspace_name: str, run_id: str, epoch: Any = None
    ) -> tuple[RunPaths, dict, dict[str, _RunStage]]:
        """The run's stages; ``epoch`` (an epoch_choice.Candidate) swaps in that epoch's weights."""
        paths = RunPaths.of(Workspace(workspace_name, self.workspace_root), run_id)
        result = read_json(paths.result_json)
        if result is None or not isinstance(result.get("stages"), dict):
            raise TrainingError(
                f"Run {run_id} of '{workspace_name}' has not finished (no readable {paths.result_json.name}).",
                hint="Wait for training to finish, or resume it.",
            )
        stages: dict[str, _RunStage] = {}
        for stage in STAGES:
            entry = result["stages"].get(stage)
            if not isinstance(entry, dict):
                stages[stage] = _RunStage("base", self._base_path(stage, None), None, None, {}, 0, 0)
                continue
            mode = "lora" if entry.get("mode") == "lora" else "full"
            weights = paths.dir / str(entry.get("weights") or paths.weights(stage, mode == "lora").name)
            if weights.parent != paths.dir or not weights.is_file():
                raise TrainingError(f"Run {run_id}: the {stage} weights file {weights.name} is missing.")
            config = entry.get("upstream_config") if isinstance(entry.get("upstream_config"), dict) else {}
            epochs = _nonneg(entry.get("epochs"))
            chosen = getattr(epoch, f"{stage}_weights", None)
            if chosen is not None:
                if not chosen.is_file():
                    raise TrainingError(f"Run {run_id}: the weights of {stage} epoch {epoch.number} are missing.")
                weights, epochs = chosen, _nonneg(getattr(epoch, f"{stage}_epoch"))
            stages[stage] = _RunStage(
                mode, self._base_path(stage, entry.get("base"), run_base(result)), weights, entry.get("lora"), config,
                epochs, _nonneg(entry.get("steps")),
            )  # fmt: skip
        return paths, result, stages

    @staticmethod
    def _run_official(stage: str, info: _RunStage) -> OfficialStage:
        from safetensors.torch import load_file

        weights = load_file(info.weights) if info.weights else None
        if info.mode == "full":
            base = official_weights(stage, info.base)
            config = info.upstream_config or base.upstream_config
            label = f"GPT-e{info.epochs}" if stage == "gpt" else f"{info.epochs}epoch_{info.steps}iteration"
            return stage_from_weights(stage, config, weights, label)
        adapters = weights if info.mode == "lora" else None
        if stage == "gpt":
            return merged_gpt(info.base, adapters, info.lora, epoch=info.epochs)
        return merged_sovits(info.base, adapters, info.lora, epoch=info.epochs, step=info.steps)

    def register_trained_voice(
        self,
        workspace_name: str,
        run_id: str,
        consent: ConsentRecord | None,
        reference: FoundReference | Sequence[FoundReference],
        *,
        name: str | None = None,
        overwrite: bool = False,
        epoch: int | None = None,
    ) -> VoiceInfo:
        """Turn a finished training run into a library voice (merged, official-format files).

        ``reference``: the default reference clip (or several, the default first) with transcript and language.
        ``epoch``: which scored epoch to keep (:mod:`studio.services.epoch_choice`); by default the recommended
        one when the run has a report, else the last.
        """
        from studio.services.epoch_choice import pick_candidate

        references = [reference] if isinstance(reference, FoundReference) else list(reference)
        voice_name = self._free_name(name or workspace_name, overwrite)
        run_dir = RunPaths.of(Workspace(workspace_name, self.workspace_root), run_id).dir
        pick, recommended = pick_candidate(run_dir, read_json(run_dir / "result.json") or {"stages": {}}, epoch)
        _, result, stages = self._read_run(workspace_name, run_id, pick)
        summary = {
            "run_id": run_id,
            "epochs": {s: i.epochs for s, i in stages.items() if i.mode != "base"},
            "steps": {s: i.steps for s, i in stages.items() if i.mode != "base"},
            "modes": {s: i.mode for s, i in stages.items()},
            "final_loss": {s: e.get("final_loss") for s, e in result["stages"].items() if isinstance(e, dict)},
            "dataset": result.get("dataset", {}),
            "epoch_choice": {
                "epoch": pick.number, "gpt": pick.gpt_epoch, "sovits": pick.sovits_epoch, "recommended": recommended,
            },
        }  # fmt: skip
        language = str(result.get("language") or "")
        info = VoiceInfo(
            name=voice_name,
            folder=self.library.root / voice_name,
            languages=[language] if language else [],
            origin="trained",
            created=_now(),
            consent=dataclasses.asdict(consent) if consent else None,
            base_model={s: dataclasses.asdict(base_identity(i.base)) for s, i in stages.items()},
            training=summary,
            source={"workspace": workspace_name, "run_id": run_id},
            model_version=run_base(result),
        )
        with tempfile.TemporaryDirectory(prefix="studio-register-") as tmp:
            models = {s: self._run_official(s, i) for s, i in stages.items()}
            return self._add_voice(info, models, references, Path(tmp))

    # ------------------------------------------------------------------------------------------ library plumbing

    def add_project_voice(
        self,
        workspace_name: str,
        consent: ConsentRecord | None,
        *,
        run_id: str | None = None,
        overwrite: bool = False,
        epoch: int | None = None,
    ) -> VoiceInfo:
        """The newest complete training run of a project (or ``run_id``, even a partial one) → a library voice
        named after the project; ``info.training["run_id"]`` says which run it came from.

        The default reference is the clip data preparation suggested (3–10 s, clean, confident transcript).
        """
        ws = Workspace(workspace_name, self.workspace_root)
        if run_id is None:
            run_id = newest_complete_run(ws)
        report = read_json(ws.prep_report) or {}
        picked = report.get("reference") or {}
        if not picked.get("audio_path"):
            raise StudioError(
                f"No reference clip was suggested for '{workspace_name}'.",
                hint="Run studio prep again, or import the run's files with a reference clip you choose.",
                ui_hint="Prepare the recordings again in the Prepare tab, or import the run's files with a reference clip you choose.",
            )
        reference = FoundReference(
            Path(picked["audio_path"]), str(picked.get("text", "")), str(picked.get("language") or "auto")
        )
        return self.register_trained_voice(workspace_name, run_id, consent, reference, overwrite=overwrite, epoch=epoch)

    def _free_name(self, name: str, overwrite: bool) -> str:
        try:
            name = validate_name(name)
        except WorkspaceError as exc:
            raise WorkspaceError(
                f"'{name}' cannot be a voice name: {exc.message}",
                hint="Choose one with --name.",
                ui_hint="Type another name.",
            ) from None
        if (self.library.root / name).exists() and not overwrite:
            raise WorkspaceError(
                f"A voice named {name!r} already exists.",
                hint="Pick another name with --name.",
                ui_hint="Type another name, or delete the old voice in the Voices tab first.",
            )
        return name

    def _add_voice(
        self,
        info: VoiceInfo,
        models: Mapping[str, OfficialStage] | tuple[Path, Path],
        references: Sequence[FoundReference],
        tmp: Path,
        *,
        overwrite: bool = False,
    ) -> VoiceInfo:
        """Write the models (or take the given official files) and add the voice with its references."""
        if not references:
            raise VoicePackError(
                f"Voice '{info.name}' has no reference clip.",
                hint="Add a 3–10 s recording of the voice (its transcript as file name or in a .lab file).",
            )
        if isinstance(models, tuple):
            gpt, sovits = models
        else:
            gpt = write_official("gpt", models["gpt"], tmp / "gpt.ckpt")
            sovits = write_official("sovits", models["sovits"], tmp / "sovits.pth")
        default, *others = references
        extras, listed = {}, []
        for index, clip in enumerate(others, start=1):
            rel = f"references/{index:02d}{clip.path.suffix.lower()}"
            extras[rel] = clip.path
            listed.append({"file": rel, "text": clip.text, "language": clip.language, "emotion": clip.emotion})
        info = dataclasses.replace(
            info, reference_text=default.text, reference_lang=default.language or "auto", references=listed
        )
        added = self.library.add(
            info, gpt=gpt, sovits=sovits, reference=_as_wav(default.path, tmp), extra_files=extras, overwrite=overwrite
        )
        _LOGGER.info("added voice '%s' (%s) to the library", added.name, added.origin)
        return added

    def _library_references(self, info: VoiceInfo) -> list[FoundReference]:
        return [
            FoundReference(path, meta["text"], meta["language"] or "auto", meta["emotion"])
            for path, meta in self.library.reference_clips(info)
        ]

    # ------------------------------------------------------------------------------------------ export

    def export_voice(
        self,
        name: str,
        out_zip: Path | None,
        *,
        official_dir: Path | None = None,
        consent: ConsentRecord | None = None,
    ) -> ExportResult:
        """Export library voice ``name`` as a voice pack (``out_zip``) and/or official files (``official_dir``).

        ``consent`` replaces the voice's recorded consent; without a confirmed record nothing is written.
        """
        if out_zip is None and official_dir is None:
            raise VoicePackError("Nothing to export: give an output zip and/or a folder for the official files.")
        info = self.library.get(name)
        consent = confirmed_consent(consent or _consent_record(info.consent), info.name)
        references = self._library_references(info)
        manifest = None
        if out_zip is not None:
            manifest = self._lora_pack_from_run(info, Path(out_zip), consent, references)
            if manifest is None:
                manifest = build_merged_pack(
                    Path(out_zip),
                    name=info.name,
                    stages={
                        "gpt": official_weights("gpt", info.gpt_path),
                        "sovits": official_weights("sovits", info.sovits_path),
                    },
                    references=references,
                    consent=consent,
                    languages=info.languages,
                    training=info.training,
                    base_model={s: FileRef(**r) for s, r in info.base_model.items() if _is_ref(r)},
                )
        gpt = sovits = None
        if official_dir is not None:
            epochs = info.training.get("epochs")
            epoch = max(map(_nonneg, epochs.values()), default=0) if isinstance(epochs, dict) else _nonneg(epochs)
            gpt, sovits = export_official_folder(
                Path(official_dir), info.name, info.gpt_path, info.sovits_path, references, epoch=epoch
            )
        return ExportResult(Path(out_zip) if out_zip else None, manifest, gpt, sovits)

    def _lora_pack_from_run(
        self, info: VoiceInfo, out_zip: Path, consent: ConsentRecord, references: list[FoundReference]
    ) -> VoiceManifest | None:
        """A small adapter pack when the voice's training run is still there, trained LoRA only and its base files
        are unchanged; None otherwise (the caller falls back to merged weights)."""
        workspace, run_id = info.source.get("workspace"), info.source.get("run_id")
        if not isinstance(workspace, str) or not isinstance(run_id, str):
            return None
        try:
            _, result, stages = self._read_run(workspace, run_id, self._voice_epoch(info, workspace, run_id))
        except StudioError as exc:
            _LOGGER.info("exporting merged weights of '%s': its run is not usable (%s)", info.name, exc)
            return None
        trained = {s: i for s, i in stages.items() if i.mode != "base"}
        if not trained or any(i.mode != "lora" for i in trained.values()):
            return None
        from safetensors.torch import load_file

        return build_lora_pack(
            out_zip,
            name=info.name,
            base={s: i.base for s, i in stages.items()},
            adapters={s: load_file(i.weights) for s, i in trained.items()},
            lora={s: dict(i.lora or {}) for s, i in trained.items()},
            configs={s: i.upstream_config for s, i in stages.items() if i.upstream_config},
            references=references,
            consent=consent,
            languages=info.languages,
            training=info.training,
            model_version=run_base(result),
        )

    def _voice_epoch(self, info: VoiceInfo, workspace: str, run_id: str) -> Any:
        """The epoch candidate a voice was made from (None: the run's final weights)."""
        from studio.services.epoch_choice import pick_candidate

        chosen = info.training.get("epoch_choice")
        number = chosen.get("epoch") if isinstance(chosen, dict) else None
        if not isinstance(number, int):
            return None
        run_dir = RunPaths.of(Workspace(workspace, self.workspace_root), run_id).dir
        return pick_candidate(run_dir, read_json(run_dir / "result.json") or {"stages": {}}, number)[0]

    # ------------------------------------------------------------------------------------------ import

    def import_voice(
        self,
        path: Path | Sequence[Path],
        *,
        name: str | None = None,
        reference_text: str | None = None,
        reference_lang: str | None = None,
        overwrite: bool = False,
    ) -> VoiceInfo:
        """Add a voice from a voice pack ``.zip``, an official ``.ckpt`` + ``.pth`` pair (files or their folder)
        or a GSVI folder. ``reference_text`` / ``reference_lang`` override the default clip's transcript/language.
        """
        paths = [Path(path)] if isinstance(path, str | Path) else [Path(p) for p in path]
        if not paths:
            raise VoicePackError("Nothing to import.")
        with tempfile.TemporaryDirectory(prefix="studio-import-") as tmp:
            if len(paths) == 1 and paths[0].suffix.lower() == ".zip":
                return self._import_pack(paths[0], name, overwrite, Path(tmp), reference_text, reference_lang)
            return self._import_official(paths, name, overwrite, Path(tmp), reference_text, reference_lang)

    def _import_pack(
        self, path: Path, name: str | None, overwrite: bool, tmp: Path, ref_text: str | None, ref_lang: str | None
    ) -> VoiceInfo:
        pack = open_voicepack(path, tmp / "pack")
        manifest = pack.manifest
        voice_name = self._free_name(name or manifest.name, overwrite)
        base = self.pretrained.base(manifest.model_version if manifest.model_version != "v1" else "v2")
        models = pack_to_official(pack, {"gpt": base.gpt, "sovits": base.sovits})
        references = [FoundReference(p, clip.text, clip.language) for p, clip in pack.reference_paths()]
        references[0] = _override(references[0], ref_text, ref_lang)
        info = VoiceInfo(
            name=voice_name,
            folder=self.library.root / voice_name,
            languages=list(manifest.languages),
            origin="imported-pack",
            created=manifest.created,
            consent=dataclasses.asdict(manifest.consent),
            base_model={s: dataclasses.asdict(r) for s, r in manifest.base_model.items()},
            training=dict(manifest.training),
            source={"pack": path.name, "kind": manifest.weights.kind},
            model_version=_sovits_version(models["sovits"]),
        )
        return self._add_voice(info, models, references, tmp, overwrite=overwrite)

    def _import_official(
        self,
        paths: list[Path],
        name: str | None,
        overwrite: bool,
        tmp: Path,
        ref_text: str | None,
        ref_lang: str | None,
    ) -> VoiceInfo:
        from studio.models.sovits.checkpoint import load_sovits
        from studio.models.text2semantic_checkpoint import load_text2semantic

        source = scan_official_source(paths, default_language=ref_lang or "auto")
        voice_name = self._free_name(name or source.name_hint, overwrite)
        if not source.references:
            raise VoicePackError(
                f"No reference clip found next to {source.gpt.name} and {source.sovits.name}.",
                hint="Add a 3–10 s recording of the voice, its transcript as the file name (or in a .lab file).",
            )
        gpt = load_text2semantic(source.gpt)  # refuses what cannot run, before anything is copied
        sovits = load_sovits(source.sovits)
        references = [_override(source.references[0], ref_text, ref_lang), *source.references[1:]]
        info = VoiceInfo(
            name=voice_name,
            folder=self.library.root / voice_name,
            languages=sorted({c.language for c in references if c.language != "auto"}),
            origin="imported-official",
            created=_now(),
            training={"official_info": {"gpt": gpt.info.info or "", "sovits": sovits.info.info_text}},
            source={"path": str(source.gpt.parent), "gpt": source.gpt.name, "sovits": source.sovits.name},
            model_version=sovits.version,
        )
        return self._add_voice(info, (source.gpt, source.sovits), references, tmp, overwrite=overwrite)


def _override(clip: FoundReference, text: str | None, lang: str | None) -> FoundReference:
    return dataclasses.replace(
        clip, text=clip.text if text is None else text.strip(), language=lang or clip.language or "auto"
    )


def run_base(result: Mapping[str, Any]) -> str:
    """The base version a run trained from (result.json ``settings.base``; runs before it existed: v2)."""
    settings = result.get("settings") if isinstance(result.get("settings"), dict) else {}
    base = settings.get("base")
    return base if isinstance(base, str) and base else "v2"


def _sovits_version(stage: OfficialStage) -> str:
    return str(getattr(getattr(stage.model, "config", None), "version", "") or "v2")


def _nonneg(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("file"), str) and isinstance(value.get("sha256"), str)


__all__ = ["ExportResult", "FoundReference", "VoiceNotFoundError", "VoicePackService"]
