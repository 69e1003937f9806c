"""Measuring each saved epoch of a run (see :mod:`studio.services.epoch_choice` for the rule and the report).

For every candidate (a GPT epoch paired with a SoVITS epoch) the base models are reset to their pretrained
weights and the candidate's epoch weights are applied exactly as "Add to my voices" applies a run's weights
(adapters merged into the base); the studio's own :class:`~studio.inference.synthesizer.Synthesizer` then
speaks the held-out sentences with the run's reference clip and a fixed seed, so every epoch gets the same
sentences, reference and random draws and only the weights differ.

**Held-out sentences** are a small fixed set per language (en, zh, ja; others use English), short everyday
sentences; any that appears in the dataset's transcripts is skipped, so none was trained on. The dataset list
format has no way to mark clips as held out (every clip trains), so the user's own clips are not used as test
sentences — that would measure memorisation, not reading.

**Speaker similarity** is measured against the mean embedding of up to ``similarity_clips`` of the user's
clips, with a pluggable :class:`SpeakerEmbedder`: the v2Pro speaker-verification model (ERes2NetV2, 20480-d)
when its checkpoint ``sv/pretrained_eres2netv2w24s4ep4.ckpt`` is in the pretrained folder and its module is
installed, else Resemblyzer's d-vector encoder (the take-QA one). The report names the embedder; scores of
different embedders are never mixed.

Cost: ``sentences_per_epoch`` (2) short sentences per candidate, each capped at the run's sample token budget,
plus one Whisper transcript and one embedding each; progress goes to a callback (the job's events).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from studio.errors import StudioError, TrainingError
from studio.inference import compute_thread
from studio.pretrained import PretrainedAssets
from studio.services.epoch_choice import (
    Candidate,
    EpochReport,
    EpochScore,
    load_report,
    recommend,
    save_report,
)
from studio.training.run_layout import RunConfig, RunPaths, read_json

_LOGGER = logging.getLogger(__name__)

SV_CHECKPOINT = "sv/pretrained_eres2netv2w24s4ep4.ckpt"
SAMPLES_DIR = "epoch_choice"
HELD_OUT = {
    "en": [
        "The library opens at nine on weekdays.",
        "Please bring a warm coat, it may rain later.",
        "My brother fixed the old bicycle last summer.",
        "We watched the boats come back before sunset.",
    ],
    "zh": [
        "图书馆每天早上九点开门。",
        "明天可能下雨，记得带伞。",
        "我哥哥去年夏天修好了那辆旧自行车。",
        "我们在日落前看着小船回到港口。",
    ],
    "ja": [
        "図書館は毎朝九時に開きます。",
        "明日は雨が降るかもしれません。",
        "兄は去年の夏に古い自転車を直しました。",
        "夕方、私たちは港に戻る船を見ました。",
    ],
}
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ScoringConfig:
    sentences_per_epoch: int = 2
    max_candidates: int = 10
    similarity_clips: int = 5
    max_tokens: int | None = None  # semantic tokens per sentence; None: the run's sample budget
    seed: int | None = None  # None: the run's seed


def held_out_sentences(language: str, transcripts: list[str], n: int) -> tuple[str, list[str]]:
    """(language used, the first ``n`` fixed sentences of it that are not among ``transcripts``)."""
    from studio.services.take_qa import normalize_text

    lang = language if language in HELD_OUT else "en"
    seen = {normalize_text(t) for t in transcripts}
    return lang, [s for s in HELD_OUT[lang] if normalize_text(s) not in seen][: max(1, n)]


# ----------------------------------------------------------------------------------------- speaker embedders


class SpeakerEmbedder(Protocol):
    name: str

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 ``(T,)`` → unit-length embedding."""
        ...


class ResemblyzerEmbedder:
    name = "resemblyzer"

    def __init__(self, device: str = "cpu") -> None:
        from studio.services.take_qa import SpeakerEncoder

        self.encoder = SpeakerEncoder(device=device)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encoder.embed(audio, sample_rate)


class SVEmbedder:
    """The v2Pro speaker-verification model: 16 kHz ``(1, N)`` → ``(1, 20480)``, L2-normalised here."""

    name = "sv-eres2netv2"

    def __init__(self, checkpoint: Path, device: str = "cpu") -> None:
        from studio.models.speaker_verification import load_speaker_verifier

        self.model = compute_thread.run(load_speaker_verifier, checkpoint, device=device)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        from studio.audio.resample import sinc_resample

        def embed() -> np.ndarray:  # on the models' thread (see studio.inference.compute_thread)
            wav = torch.from_numpy(np.asarray(audio, dtype=np.float32))[None]  # (1, N)
            if sample_rate != 16000:
                wav = sinc_resample(wav, sample_rate, 16000)
            with torch.inference_mode():
                return self.model.embed(wav)[0].double().cpu().numpy()  # (20480,)

        emb = compute_thread.run(embed)
        return emb / max(float(np.linalg.norm(emb)), 1e-12)


def choose_embedder(pretrained: PretrainedAssets, device: str = "cpu") -> SpeakerEmbedder:
    """The SV model when its checkpoint and module are present, else Resemblyzer."""
    checkpoint = Path(pretrained.root) / SV_CHECKPOINT
    modules = ("studio.models.speaker_verification", "studio.audio.resample")
    if checkpoint.is_file() and all(importlib.util.find_spec(m) is not None for m in modules):
        try:
            return SVEmbedder(checkpoint, device)
        except Exception as exc:  # an unusable SV file must not stop the scoring
            _LOGGER.warning("speaker-verification model unusable (%s); using Resemblyzer", exc)
    return ResemblyzerEmbedder(device)


# ----------------------------------------------------------------------------------------- the run's inputs


@dataclass
class RunInputs:
    paths: RunPaths
    cfg: RunConfig
    result: dict[str, Any]
    reference: tuple[Path, str, str]  # audio, transcript, language
    clips: list[Path]  # the user's clips for the voice centroid
    transcripts: list[str]


def read_run(run_dir: Path) -> RunInputs:
    """A finished run's config, result, reference clip and dataset (TrainingError when unusable)."""
    from studio.corpus import read_list

    paths = RunPaths(Path(run_dir))
    result = read_json(paths.result_json)
    if not result or not isinstance(result.get("stages"), dict):
        raise TrainingError(
            f"Run {paths.run_id} has not finished, so its epochs cannot be compared yet.",
            hint="Let training finish (or resume it) first.",
        )
    cfg = RunConfig.load(paths.run_json)
    entries = read_list(cfg.workspace.dataset_list, strict=False) if cfg.workspace.dataset_list.is_file() else []
    entries = [e for e in entries if e.audio_path.is_file()]
    if not entries:
        raise TrainingError(f"The dataset of '{cfg.name}' is gone, so the epochs cannot be compared with it.")
    picked = (read_json(cfg.workspace.prep_report) or {}).get("reference") or {}
    if picked.get("audio_path") and Path(picked["audio_path"]).is_file():
        reference = (Path(picked["audio_path"]), str(picked.get("text", "")), str(picked.get("language") or "auto"))
    else:
        from studio.audio.io import probe_audio

        def distance(e) -> float:
            seconds = probe_audio(e.audio_path).duration_s
            return abs(seconds - 5.0) + (100.0 if not 3.0 <= seconds <= 10.0 else 0.0)

        e = min(entries, key=distance)
        reference = (e.audio_path, e.text, e.language)
    step = max(1, len(entries) // 5)
    clips = [e.audio_path for e in entries[::step]]
    return RunInputs(paths, cfg, result, reference, clips, [e.text for e in entries])


def run_candidates(inputs: RunInputs, limit: int) -> list[Candidate]:
    from studio.services.epoch_choice import run_candidates as candidates_of

    return candidates_of(inputs.paths.dir, inputs.result, limit)


# ----------------------------------------------------------------------------------------- the scorer


class _Voices:
    """The base models, loaded once; :meth:`synthesizer` resets them and applies one candidate's weights."""

    def __init__(self, inputs: RunInputs, pretrained: PretrainedAssets, device: str) -> None:
        import torch

        from studio.models.content_encoder import ContentEncoder
        from studio.models.sovits.checkpoint import load_sovits
        from studio.models.text2semantic_checkpoint import load_text2semantic
        from studio.models.text_features import ChineseBertFeatures

        self.inputs, self.device = inputs, torch.device(device)
        stages = inputs.result["stages"]
        self.gpt = load_text2semantic(_base(stages.get("gpt"), pretrained.gpt_path)).model.float()
        loaded = load_sovits(_base(stages.get("sovits"), pretrained.sovits_path))
        self.sovits, self.version = loaded.model.float(), loaded.version
        self.verifier = None  # v2Pro/v2ProPlus: every reference also needs its SV embedding
        if loaded.config.uses_speaker_verification:
            from studio.models.speaker_verification import load_speaker_verifier

            self.verifier = load_speaker_verifier(pretrained.sv_path, device=self.device)
        self.base = {"gpt": _copy_state(self.gpt), "sovits": _copy_state(self.sovits)}
        self.hubert = ContentEncoder(pretrained.hubert_dir, device=self.device)
        self.bert = (
            ChineseBertFeatures(pretrained.bert_dir, device=self.device) if pretrained.bert_dir.exists() else None
        )

    def synthesizer(self, candidate: Candidate):
        from studio.inference.synthesizer import EngineModels, Synthesizer
        from studio.training.stage_weights import apply_stage_weights

        stages = self.inputs.result["stages"]
        for stage, model, weights in (
            ("gpt", self.gpt, candidate.gpt_weights),
            ("sovits", self.sovits, candidate.sovits_weights),
        ):
            model.to("cpu").load_state_dict(self.base[stage])
            if weights is not None:
                summary = {**stages[stage], "weights": str(Path(weights).relative_to(self.inputs.paths.dir))}
                apply_stage_weights(model, self.inputs.paths.dir, summary, strict=False)
        models = EngineModels(
            gpt=self.gpt.to(self.device).eval(),
            sovits=self.sovits.to(self.device).eval(),
            content_encoder=self.hubert,
            bert=self.bert,
            version=self.version,
            device=self.device,
            speaker_verifier=self.verifier,
        )
        return Synthesizer(models)


def _base(summary: Any, default: Path) -> Path:
    recorded = summary.get("base", {}).get("path") if isinstance(summary, dict) else None
    return Path(recorded) if recorded and Path(recorded).is_file() else default


def _copy_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class EpochScorer:
    """Scores a run's epochs and writes ``epochs.json``; the recogniser and embedder load on first use."""

    def __init__(
        self,
        pretrained: PretrainedAssets,
        *,
        device: str = "cpu",
        transcriber: Callable[[], object] | None = None,
        embedder: SpeakerEmbedder | None = None,
        config: ScoringConfig | None = None,
        workspace_root: Path | None = None,
    ) -> None:
        """``workspace_root``: whose Whisper choice (Models & Settings) hears the samples, as take QA does;
        without it (and without ``transcriber``) the packaged default model."""
        from studio.services.take_qa import TakeChecker

        self.pretrained, self.device = pretrained, device
        self.config = config or ScoringConfig()
        self._embedder = embedder
        self.checker = TakeChecker(transcriber or _default_transcriber(workspace_root, pretrained))

    @property
    def embedder(self) -> SpeakerEmbedder:
        if self._embedder is None:
            self._embedder = choose_embedder(self.pretrained, self.device)
        return self._embedder

    def score_run(
        self, run_dir: Path, on_progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> EpochReport:
        """Score every candidate not measured yet (the others are reused), save and return the report."""
        inputs = read_run(run_dir)
        report, todo = self._plan(inputs)
        if todo:
            centroid = self._centroid(inputs.clips)
            voices = _Voices(inputs, self.pretrained, self.device)
            for done, candidate in enumerate(todo):
                if should_stop is not None and should_stop():
                    break
                if on_progress is not None:
                    on_progress(done, len(todo), f"scoring epoch {candidate.number}")
                score = self._score(inputs, report, voices.synthesizer(candidate), candidate, centroid)
                report.scores = sorted([*report.scores, score], key=lambda s: s.number)
                report.recommended, report.reason = recommend(report.scores)
                save_report(inputs.paths.dir, report)
            if on_progress is not None:
                on_progress(len(todo), len(todo), "epochs scored")
        report.recommended, report.reason = recommend(report.scores)
        save_report(inputs.paths.dir, report)
        return report

    def _plan(self, inputs: RunInputs) -> tuple[EpochReport, list[Candidate]]:
        """A report holding the stored scores still valid for this run, and the candidates left to score."""
        language, sentences = held_out_sentences(
            str(inputs.result.get("language") or "en"), inputs.transcripts, self.config.sentences_per_epoch
        )
        seed = self.config.seed if self.config.seed is not None else inputs.cfg.seed
        fresh = EpochReport(inputs.paths.run_id, language, sentences, self.embedder.name, seed)
        candidates = run_candidates(inputs, self.config.max_candidates)
        old = load_report(inputs.paths.dir)
        same = old is not None and (old.sentences, old.embedder, old.seed) == (sentences, fresh.embedder, seed)
        kept = {s.key: s for s in old.scores} if same else {}
        fresh.scores = [replace(kept[c.key], number=c.number) for c in candidates if c.key in kept]
        return fresh, [c for c in candidates if c.key not in kept]

    def _centroid(self, clips: list[Path]) -> np.ndarray | None:
        from studio.audio.io import load_audio

        vectors = []
        for clip in clips[: self.config.similarity_clips]:
            try:
                vectors.append(self.embedder.embed(*load_audio(clip)))
            except StudioError as exc:
                _LOGGER.info("clip %s left out of the voice centroid: %s", clip, exc)
        if not vectors:
            return None
        mean = np.mean(vectors, axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def _score(self, inputs: RunInputs, report: EpochReport, synth, candidate: Candidate, centroid) -> EpochScore:
        from studio.audio.io import save_wav
        from studio.inference.requests import SynthesisRequest

        ref, ref_text, ref_lang = inputs.reference
        max_tokens = self.config.max_tokens or inputs.cfg.sample_max_tokens
        score = EpochScore(candidate.number, candidate.gpt_epoch, candidate.sovits_epoch)
        cers, sims = [], []
        for index, text in enumerate(report.sentences, start=1):
            request = SynthesisRequest(
                text=text, lang=report.language, reference=ref, ref_text=ref_text, ref_lang=ref_lang,
                seed=report.seed, max_tokens_per_sentence=max_tokens, auto_trim_reference=True,
            )  # fmt: skip
            result = synth.synthesize(request)
            rel = f"{SAMPLES_DIR}/e{candidate.number}_s{index}.wav"
            save_wav(inputs.paths.dir / rel, result.audio, result.sample_rate, {"comment": "AI-generated"})
            score.samples.append(rel)
            qa = self.checker.check(result.audio, result.sample_rate, text, report.language)
            score.notes.extend(qa.notes)
            score.transcripts.append(qa.transcript or "")
            if qa.cer is not None:
                cers.append(min(1.0, qa.cer))
            if centroid is not None:
                try:
                    sims.append(float(np.dot(self.embedder.embed(result.audio, result.sample_rate), centroid)))
                except StudioError as exc:
                    score.notes.append(f"Speaker similarity unavailable: {exc.message}")
        score.cer = round(float(np.mean(cers)), 4) if cers else None
        score.similarity = round(float(np.mean(sims)), 4) if sims else None
        return score


def _default_transcriber(workspace_root: Path | None, pretrained: PretrainedAssets) -> Callable[[], object]:
    """The recogniser take QA uses: the workspace's chosen Whisper model (``ASRChoice``; a chosen model that has
    gone missing is refused with what to do), or the packaged default without a workspace; created on first use."""
    holder: list[object] = []

    def get() -> object:
        if not holder:
            from studio.dataprep.transcribe import WhisperTranscriber

            if workspace_root is None:
                holder.append(WhisperTranscriber())
            else:
                from studio.services.asr_choice import ASRChoice

                holder.append(WhisperTranscriber(ASRChoice(Path(workspace_root), pretrained).path()))
        return holder[0]

    return get
