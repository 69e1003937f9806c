"""Training features of a prepared dataset, cached in ``workspace/<name>/features/`` (SPEC §9.2).

For every line of ``dataset.list``:

* phones through the text front end, and phone-level Chinese BERT features for zh segments (other
  languages get zeros, which are not stored: ``has_bert`` is false);
* the 32 kHz clip scaled the way upstream's preparation does (:func:`training_waveforms`): the int16
  training waveform, and the 16 kHz HuBERT input at amplitudes in the hundreds → HuBERT content (768, T_ssl);
* semantic tokens: the content through the **base** SoVITS ``ssl_proj`` + quantizer (25 Hz);
* for a v2Pro/v2ProPlus base, the speaker-verification embedding of the int16 training waveform (upstream's
  ``2-get-sv.py``: 32 kHz → 16 kHz, Kaldi fbank, ERes2NetV2), which SoVITS training adds to its style vector.

Each clip becomes ``features/<key>.safetensors`` (``phone_ids`` int64 (T_text,), ``bert`` float32
(1024, T_text) when has_bert, ``ssl`` float32 (768, T_ssl), ``semantic`` int64 (T_sem,), ``wav`` int16 (N,),
``sv_emb`` float32 (E,) with a v2Pro/v2ProPlus base). ``features/manifest.json`` records, per clip, a hash of
its input (audio bytes, text, language) and, for the whole folder, a key of the settings (front-end version,
identity — path, size, mtime — of the HuBERT, BERT, base SoVITS and speaker-verification files). Re-running redoes only clips whose input changed, everything when the settings
changed, and forgets clips no longer in the list.

Legend: ``T_text`` phones, ``T_ssl`` 50 Hz frames, ``T_sem`` 25 Hz tokens, ``N`` samples at 32 kHz.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from studio.corpus import DatasetEntry, read_list, text_for_phones
from studio.errors import CheckpointError, DatasetError, MissingPretrainedError, StudioError
from studio.pretrained import BasePaths, PretrainedAssets
from studio.text.user_lexicon import UserLexicon, using
from studio.workspace import Workspace, atomic_write_bytes, atomic_write_json

_LOGGER = logging.getLogger(__name__)

FEATURES_FORMAT = 1
FRONTEND_VERSION = "v2"
TRAIN_SAMPLE_RATE = 32000
ProgressFn = Callable[[int, int, str], None]  # (done, total, clip name)


@dataclass(frozen=True)
class FeatureItem:
    """One clip's cached features (paths relative to the features folder)."""

    key: str
    file: str
    audio: str
    text: str
    language: str
    input_hash: str
    n_phones: int
    n_semantic: int
    seconds: float
    has_bert: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureSet:
    folder: Path
    items: list[FeatureItem]
    skipped: list[str]  # "<clip>: reason"
    reused: int
    computed: int

    @property
    def seconds(self) -> float:
        return sum(i.seconds for i in self.items)

    @property
    def main_language(self) -> str:
        counts: dict[str, float] = {}
        for item in self.items:
            counts[item.language] = counts.get(item.language, 0.0) + item.seconds
        return max(counts, key=counts.get) if counts else "en"

    def path(self, item: FeatureItem) -> Path:
        return self.folder / item.file


def file_identity(path: Path) -> dict[str, Any]:
    """Cheap identity of a model file or folder: resolved path, size and mtime of each file."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return {"path": str(path), "files": out}


def settings_key(pretrained: PretrainedAssets, need_bert: bool, base: BasePaths | None = None) -> str:
    base = base or pretrained.base("v2")
    settings = {
        "format": FEATURES_FORMAT,
        "frontend": FRONTEND_VERSION,
        "hubert": file_identity(pretrained.hubert_dir),
        "sovits": file_identity(base.sovits),
        "bert": file_identity(pretrained.bert_dir) if need_bert else None,
    }
    if base.speaker_verification is not None:  # keeps the keys of v2 caches as they were
        settings["sv"] = file_identity(base.speaker_verification)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def entry_key(entry: DatasetEntry) -> str:
    digest = hashlib.sha1(str(Path(entry.audio_path).resolve()).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(entry.audio_path).stem)[:60]
    return f"{stem}_{digest}"


def input_hash(entry: DatasetEntry, lexicon: UserLexicon | None = None) -> str:
    """Hash of what a clip's features depend on: audio bytes, language, text and, when the user's pronunciation
    list is in use, the phones it gives (so editing the list redoes exactly the clips whose reading changed)."""
    h = hashlib.sha256()
    try:
        h.update(Path(entry.audio_path).read_bytes())
    except OSError as exc:
        raise DatasetError(f"Cannot read the clip {entry.audio_path}: {exc.strerror}.") from None
    h.update(b"\0" + entry.language.encode() + b"\0" + entry.text.encode())
    if lexicon:
        from studio.text.frontend import text_to_phones

        text = text_for_phones(entry.text)
        try:
            mine = text_to_phones(text, entry.language, FRONTEND_VERSION, lexicon=lexicon).phone_ids
            if mine != text_to_phones(text, entry.language, FRONTEND_VERSION).phone_ids:  # the list applies here
                h.update(b"\0" + " ".join(map(str, mine)).encode())
        except StudioError:
            pass  # extraction reports the text
    return h.hexdigest()


class _Extractors:
    """The models feature extraction needs, loaded on first use."""

    def __init__(self, pretrained: PretrainedAssets, device: str, base: BasePaths | None = None) -> None:
        self.pretrained, self.device = pretrained, device
        self.base = base or pretrained.base("v2")
        self._hubert = self._bert = self._sovits = self._verifier = None

    @property
    def hubert(self):
        if self._hubert is None:
            from studio.models.content_encoder import ContentEncoder

            self._hubert = ContentEncoder(self.pretrained.hubert_dir, device=self.device)
        return self._hubert

    @property
    def bert(self):
        if self._bert is None:
            from studio.models.text_features import ChineseBertFeatures

            self._bert = ChineseBertFeatures(self.pretrained.bert_dir, device=self.device)
        return self._bert

    @property
    def sovits(self):
        if self._sovits is None:
            from studio.models.sovits import load_sovits

            self._sovits = load_sovits(self.base.sovits, device=self.device).model
        return self._sovits

    @property
    def verifier(self):
        """The speaker-verification model of a v2Pro/v2ProPlus base; None for v1/v2."""
        if self._verifier is None and self.base.speaker_verification is not None:
            from studio.models.speaker_verification import load_speaker_verifier

            self._verifier = load_speaker_verifier(self.base.speaker_verification, self.device)
        return self._verifier


def _phones_and_bert(entry: DatasetEntry, models: _Extractors) -> tuple[torch.Tensor, torch.Tensor | None]:
    from studio.text.frontend import text_to_phones

    seq = text_to_phones(text_for_phones(entry.text), entry.language, FRONTEND_VERSION)
    phone_ids = torch.tensor(seq.phone_ids, dtype=torch.long)  # (T_text,)
    if not any(seg.needs_bert for seg in seq.segments):
        return phone_ids, None
    bert = torch.zeros(1024, len(phone_ids))
    for seg in seq.segments:
        if seg.needs_bert and seg.phones:
            feats = models.bert.phone_features(seg.norm_text, seg.word2ph or [])  # (H, n)
            if feats.shape[0] != bert.shape[0]:
                raise DatasetError(f"The BERT model gives {feats.shape[0]}-d features; the GPT needs {bert.shape[0]}.")
            bert[:, seg.start : seg.end] = feats.float().cpu()
    return phone_ids, bert  # (1024, T_text)


def extract_one(entry: DatasetEntry, models: _Extractors) -> tuple[dict[str, torch.Tensor], float]:
    """The tensors of one clip and its duration in seconds."""
    from studio.audio.io import load_audio
    from studio.models.content_encoder import training_waveforms

    phone_ids, bert = _phones_and_bert(entry, models)
    x32, _ = load_audio(entry.audio_path, TRAIN_SAMPLE_RATE)
    waves = training_waveforms(x32)
    ssl = models.hubert.encode(torch.from_numpy(waves.wav16k_scaled)[None]).float()  # (1, 768, T_ssl)
    sovits = models.sovits
    with torch.no_grad():
        codes = sovits.extract_latent(ssl.to(next(sovits.parameters()).device))  # (Q, 1, T_sem)
    tensors = {
        "phone_ids": phone_ids,
        "ssl": ssl[0].cpu().contiguous(),
        "semantic": codes[0, 0].long().cpu().contiguous(),
        "wav": torch.from_numpy(waves.wav32k_int16.copy()),
    }
    if bert is not None:
        tensors["bert"] = bert.contiguous()
    if models.verifier is not None:
        tensors["sv_emb"] = sv_embedding(models.verifier, waves.wav32k_int16)
    return tensors, len(x32) / TRAIN_SAMPLE_RATE


def sv_embedding(verifier, wav32k_int16) -> torch.Tensor:
    """(E,) embedding of the int16 training waveform, as upstream's ``2-get-sv.py`` computes it."""
    from studio.models.speaker_verification import sv_embedding_for_training

    emb = sv_embedding_for_training(verifier, wav32k_int16)  # (1, E); int16 is scaled by 1/32768 there
    return emb[0].float().cpu().contiguous()


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FEATURES_FORMAT else {}


def extract_features(
    workspace: Workspace,
    pretrained: PretrainedAssets,
    *,
    device: str = "cpu",
    on_progress: ProgressFn | None = None,
    list_path: Path | None = None,
    lexicon: UserLexicon | None = None,
    base: BasePaths | None = None,
) -> FeatureSet:
    """Bring ``workspace.features_dir`` up to date with the dataset list; returns every usable clip.

    ``lexicon``: the user's own pronunciations, applied to the transcripts as synthesis applies them.
    ``base``: the base model files training starts from (v2 by default); its SoVITS gives the semantic tokens
    and, for v2Pro/v2ProPlus, its speaker-verification model the ``sv_emb`` of each clip.

    Clips that cannot be used (unreadable, clipped, text without phones, unsupported language) are skipped
    with a warning and listed in ``skipped``. Raises :class:`DatasetError` when the list is missing or empty.
    """
    from safetensors.torch import save

    list_path = Path(list_path or workspace.dataset_list)
    if not list_path.is_file():
        raise DatasetError(
            f"No prepared dataset at {list_path}.",
            hint="Run `studio prep` first, or put a dataset.list there.",
            ui_hint="Prepare the recordings in the Prepare tab first.",
        )
    entries = read_list(list_path, strict=False)
    if not entries:
        raise DatasetError(f"The dataset list {list_path} has no usable lines.")
    folder = workspace.features_dir
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    key = settings_key(pretrained, need_bert=any(e.language == "zh" for e in entries), base=base)
    old = _load_manifest(manifest_path)
    old_items = old.get("items", {}) if old.get("settings") == key else {}
    models = _Extractors(pretrained, device, base)
    items: list[FeatureItem] = []
    skipped: list[str] = []
    reused = 0
    for index, entry in enumerate(entries):
        if on_progress:
            on_progress(index, len(entries), entry.name)
        k = entry_key(entry)
        try:
            ihash = input_hash(entry, lexicon)
        except DatasetError as exc:
            _LOGGER.warning("skipping %s: %s", entry.name, exc)
            skipped.append(f"{entry.name}: {exc.message}")
            continue
        prev = old_items.get(k)
        if prev and prev.get("input_hash") == ihash and (folder / prev["file"]).is_file():
            items.append(FeatureItem(**prev))
            reused += 1
            continue
        try:
            with using(lexicon):
                tensors, seconds = extract_one(entry, models)
        except (CheckpointError, MissingPretrainedError):
            raise  # a base model that cannot be loaded is not a problem of this clip: stop and say so
        except StudioError as exc:
            _LOGGER.warning("skipping %s: %s", entry.name, exc)
            skipped.append(f"{entry.name}: {exc.message}")
            continue
        file = f"{k}.safetensors"
        atomic_write_bytes(folder / file, save(tensors))
        item = FeatureItem(
            key=k,
            file=file,
            audio=str(entry.audio_path),
            text=entry.text,
            language=entry.language,
            input_hash=ihash,
            n_phones=int(tensors["phone_ids"].numel()),
            n_semantic=int(tensors["semantic"].numel()),
            seconds=round(seconds, 4),
            has_bert="bert" in tensors,
        )
        items.append(item)
        # Save the manifest after every clip so an interrupted extraction keeps what it finished.
        _write_manifest(manifest_path, key, items, old_items)
    _write_manifest(manifest_path, key, items, {})
    _remove_stale(folder, items)
    if on_progress:
        on_progress(len(entries), len(entries), "")
    return FeatureSet(folder, items, skipped, reused, len(items) - reused)


def _write_manifest(path: Path, key: str, items: list[FeatureItem], pending: dict[str, Any]) -> None:
    done = {i.key: i.to_dict() for i in items}
    keep = {k: v for k, v in pending.items() if k not in done}  # not yet revisited in this pass
    atomic_write_json(path, {"format": FEATURES_FORMAT, "settings": key, "items": {**keep, **done}})


def _remove_stale(folder: Path, items: list[FeatureItem]) -> None:
    wanted = {i.file for i in items}
    for f in folder.glob("*.safetensors"):
        if f.name not in wanted:
            f.unlink(missing_ok=True)


def load_item(features: FeatureSet, item: FeatureItem) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(features.path(item)))
