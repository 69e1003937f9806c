"""Chinese BERT features for the GPT (SPEC §2.4): chinese-roberta-wwm-ext-large, read from its Hugging Face folder.

Only Chinese segments get real features; other languages get zeros. The text front end
(``studio.text``) produces ``norm_text`` and ``word2ph``; this module never imports it.

* the tokenizer gives ``[CLS] c1 … cn [SEP]`` — one token per character of the normalised text;
* the encoder (plain PyTorch, :mod:`studio.models.bert_encoder`) runs up to the layer whose output is
  ``hidden_states[-3]`` (the third-to-last state) and that output without the [CLS]/[SEP] rows is the feature
  → (n_chars, H);
* row *i* is repeated ``word2ph[i]`` times and the result transposed → (H, n_phones).

Legend: ``H`` hidden size (1024 for the real model), ``T_text`` phones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from studio.errors import CheckpointError, MissingPretrainedError, TextError
from studio.models.load_once import LoadOnce

__all__ = ["ChineseBertFeatures", "LazyChineseBert", "zeros_features", "BERT_FEATURE_DIM"]

_LOGGER = logging.getLogger(__name__)

BERT_FEATURE_DIM = 1024  # what the GPT's bert_proj expects
_HIDDEN_STATE_INDEX = -3
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def zeros_features(n_phones: int, dim: int = BERT_FEATURE_DIM, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The feature of a non-Chinese segment: zeros (dim, n_phones)."""
    return torch.zeros(dim, n_phones, dtype=dtype)


def _check_folder(folder: Path) -> None:
    expected = (
        "config.json, one of " + " / ".join(_WEIGHT_FILES) + " and a tokenizer (" + " / ".join(_TOKENIZER_FILES) + ")"
    )
    hint = "Download chinese-roberta-wwm-ext-large into that folder."
    if not folder.is_dir():
        raise MissingPretrainedError(
            f"The Chinese BERT folder {folder} does not exist (expected {expected}).", hint=hint
        )
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("config.json")
    if not any((folder / n).is_file() for n in _WEIGHT_FILES):
        problems.append("a weight file")
    if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
        problems.append("a tokenizer")
    if problems:
        raise MissingPretrainedError(f"{folder} lacks {', '.join(problems)} (expected {expected}).", hint=hint)


class ChineseBertFeatures:
    """``ChineseBertFeatures(folder, device="cpu", dtype=torch.float32)`` for a chinese-roberta-wwm-ext-large folder."""

    def __init__(
        self,
        folder: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        precision: str = "fp32",
    ):
        """``precision`` 'bf16'/'int8': the linears in that mode (``studio.models.precision``), kept converted on
        disk after the first load so later loads never hold the fp32 weights (:mod:`converted_weights`)."""
        from studio.models.precision import check_mode

        self.folder = Path(folder)
        _check_folder(self.folder)
        self.precision = check_mode(precision)
        from studio.models.bert_encoder import BertTokenizer

        try:
            self.tokenizer = BertTokenizer(self.folder)
        except Exception as exc:  # a damaged tokenizer file: whatever the detail, the folder is unusable
            raise CheckpointError(f"Cannot load the Chinese BERT tokenizer from {self.folder}: {exc}") from exc
        self.from_converted_cache = False
        if self.precision != "fp32":
            model = self._load_light()
            if model is not None:
                self.model = model.eval().to(device=device)
                self.from_converted_cache = True
                return
        self.model = self._load_fp32().to(device=device, dtype=dtype)
        if self.precision != "fp32":
            self._convert_and_keep()

    def _weight_file(self) -> Path:
        return next(self.folder / n for n in _WEIGHT_FILES if (self.folder / n).is_file())

    def _load_light(self):
        """The light model from its converted cache (None: not there yet, stale or damaged — a cache written by
        an older version with other tensor names included)."""
        from studio.models.bert_encoder import BertEncoder, BertSizes
        from studio.models.converted_weights import load_converted

        try:
            sizes = BertSizes.from_folder(self.folder)
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"Cannot read the Chinese BERT config in {self.folder}: {exc}") from exc
        with torch.device("meta"):
            empty = BertEncoder(sizes)
        return load_converted(self._weight_file(), "chinese-bert", self.precision, empty)

    def _convert_and_keep(self) -> None:
        from studio.models.converted_weights import save_converted
        from studio.models.precision import convert_linears, own_copies

        convert_linears(self.model, self.precision, source=self._weight_file())  # layer by layer: see there
        own_copies(self.model)  # let go of the fp32 file the weights were read from
        save_converted(self._weight_file(), "chinese-bert", self.precision, self.model)

    def _load_fp32(self):
        from studio.models.bert_encoder import load_bert_encoder

        try:
            model, problems = load_bert_encoder(self.folder, self._weight_file())
        except Exception as exc:  # an unreadable config or weight file, whatever the detail
            raise CheckpointError(f"Cannot load the Chinese BERT model from {self.folder}: {exc}") from exc
        if problems:
            raise CheckpointError(
                f"The BERT weights in {self.folder} do not match its config.json: {len(problems)} weights missing "
                f"or of the wrong shape (e.g. {', '.join(problems[:5])})."
            )
        return model

    @property
    def dim(self) -> int:
        """Feature size H (1024 for chinese-roberta-wwm-ext-large)."""
        return int(self.model.sizes.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> ChineseBertFeatures:
        self.model.to(device=device, dtype=dtype)
        return self

    def tokenize(self, norm_text: str) -> dict[str, torch.Tensor]:
        """Tokenizer output for ``norm_text``: input_ids, token_type_ids, attention_mask, each (1, n_chars + 2)."""
        if not norm_text:
            raise TextError("Cannot compute BERT features of an empty text.")
        encoded = self.tokenizer(norm_text)
        n_tokens = encoded["input_ids"].shape[-1]
        limit = int(self.model.sizes.max_position_embeddings)
        if n_tokens > limit:
            raise TextError(
                f"The sentence has {len(norm_text)} characters; the BERT model accepts at most {limit - 2}.",
                hint="Cut the text into shorter sentences.",
            )
        if n_tokens != len(norm_text) + 2:
            raise TextError(
                f"The BERT tokenizer split {norm_text!r} ({len(norm_text)} characters) into {n_tokens - 2} tokens; "
                "it must give exactly one token per character of the normalised text."
            )
        return dict(encoded)

    @torch.no_grad()
    def hidden_states(self, norm_text: str) -> torch.Tensor:
        """All hidden states (embeddings + every layer) of batch item 0: (n_layers + 1, n_chars + 2, H)."""
        inputs = {k: v.to(self.device) for k, v in self.tokenize(norm_text).items()}
        states = self.model.hidden_states(inputs["input_ids"], inputs["token_type_ids"])
        return torch.stack([h[0] for h in states])

    @torch.no_grad()
    def char_features(self, norm_text: str) -> torch.Tensor:
        """One feature row per character of ``norm_text``: (n_chars, H) from hidden_states[-3] minus [CLS]/[SEP]
        (the last two layers are not run)."""
        inputs = {k: v.to(self.device) for k, v in self.tokenize(norm_text).items()}
        n_layers = self.model.sizes.num_hidden_layers
        up_to = n_layers + 1 + _HIDDEN_STATE_INDEX  # layers whose output is hidden_states[-3]
        states = self.model.hidden_states(inputs["input_ids"], inputs["token_type_ids"], up_to=up_to)
        return states[-1][0, 1:-1]  # (n_chars, H)

    def phone_features(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """Phone-level features (H, n_phones): character row i repeated ``word2ph[i]`` times."""
        counts = [int(n) for n in word2ph]
        if len(counts) != len(norm_text):
            raise TextError(
                f"word2ph has {len(counts)} entries but the normalised text {norm_text!r} has {len(norm_text)} characters."
            )
        if any(n < 0 for n in counts):
            raise TextError(f"word2ph must not hold negative phone counts: {counts}")
        chars = self.char_features(norm_text)  # (n_chars, H)
        repeats = torch.tensor(counts, device=chars.device)
        return chars.repeat_interleave(repeats, dim=0).T  # (H, n_phones)


class LazyChineseBert:
    """The Chinese BERT, loaded when Chinese text first needs it (1.3 GB of fp32 weights that English, Japanese
    or Korean synthesis never touches).

    Same ``phone_features`` call as :class:`ChineseBertFeatures`. The folder is checked at construction (a
    missing file is reported with the voice, not with the first Chinese sentence); the model loads once, on the
    first call, under a lock. ``prepare`` (optional) receives the loaded model first, e.g. to change its precision.
    """

    def __init__(
        self,
        folder: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        *,
        prepare: Callable[[ChineseBertFeatures], ChineseBertFeatures] | None = None,
        precision: str = "fp32",
    ) -> None:
        self.folder = Path(folder)
        _check_folder(self.folder)
        self._device, self._dtype, self._prepare, self.precision = device, dtype, prepare, precision
        self._features = LoadOnce(self._build, f"loading the Chinese BERT from {self.folder} (first Chinese text)")

    def _build(self) -> ChineseBertFeatures:
        loaded = ChineseBertFeatures(self.folder, device=self._device, dtype=self._dtype, precision=self.precision)
        return self._prepare(loaded) if self._prepare else loaded

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (false until Chinese text arrived)."""
        return self._features.loaded

    def load(self) -> ChineseBertFeatures:
        """The loaded model (loads it on the first call; later and concurrent calls get the same one)."""
        return self._features.get()

    @property
    def dim(self) -> int:
        return self.load().dim

    def char_features(self, norm_text: str) -> torch.Tensor:
        return self.load().char_features(norm_text)

    def phone_features(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """Phone-level features (H, n_phones), as :meth:`ChineseBertFeatures.phone_features`."""
        return self.load().phone_features(norm_text, word2ph)
