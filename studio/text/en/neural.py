"""The g2p_en letters→phones network for words no dictionary knows: a GRU encoder-decoder, greedy decoding.

The weights (``checkpoint20.npz``) ship inside the ``g2p-en`` wheel. We read the file through the package
path without importing ``g2p_en`` (its import tries NLTK downloads) and run the forward pass in numpy.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.errors import TextError

_LOGGER = logging.getLogger(__name__)

GRAPHEMES = ["<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz"]
_VOWELS = ["AA", "AE", "AH", "AO", "AW", "AY"]
PHONEMES = [
    "<pad>", "<unk>", "<s>", "</s>",
    *[f"{v}{s}" for v in _VOWELS for s in "012"],
    "B", "CH", "D", "DH",
    *[f"{v}{s}" for v in ("EH", "ER", "EY") for s in "012"],
    "F", "G", "HH",
    *[f"{v}{s}" for v in ("IH", "IY") for s in "012"],
    "JH", "K", "L", "M", "N", "NG",
    *[f"OW{s}" for s in "012"], *[f"OY{s}" for s in "012"],
    "P", "R", "S", "SH", "T", "TH",
    *[f"UH{s}" for s in "012"], "UW", *[f"UW{s}" for s in "012"],
    "V", "W", "Y", "Z", "ZH",
]  # fmt: skip
_START, _END = PHONEMES.index("<s>"), PHONEMES.index("</s>")
_MAX_STEPS = 20


def package_data_dir(package: str) -> Path:
    """Folder of an installed package, found without importing (and so without running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TextError(
            f"English text needs the '{package.replace('_', '-')}' package for its data files.",
            hint=f"Run: pip install {package.replace('_', '-')}",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _GRU:
    """One GRU cell with PyTorch's gate layout (reset, update, new) in stacked weight matrices."""

    def __init__(self, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> None:
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = w_ih, w_hh, b_ih, b_hh
        self.hidden = w_hh.shape[1]

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        gates_x = x @ self.w_ih.T + self.b_ih  # (1, 3H)
        gates_h = h @ self.w_hh.T + self.b_hh  # (1, 3H)
        cut = 2 * self.hidden
        reset, update = np.split(_sigmoid(gates_x[:, :cut] + gates_h[:, :cut]), 2, axis=-1)
        new = np.tanh(gates_x[:, cut:] + reset * gates_h[:, cut:])
        return (1.0 - update) * new + update * h


class NeuralG2p:
    """Greedy seq2seq prediction of ARPAbet phones for one lower-case word."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.enc_emb = weights["enc_emb"]  # (n_graphemes, E)
        self.dec_emb = weights["dec_emb"]  # (n_phonemes, E)
        self.encoder = _GRU(weights["enc_w_ih"], weights["enc_w_hh"], weights["enc_b_ih"], weights["enc_b_hh"])
        self.decoder = _GRU(weights["dec_w_ih"], weights["dec_w_hh"], weights["dec_b_ih"], weights["dec_b_hh"])
        self.fc_w, self.fc_b = weights["fc_w"], weights["fc_b"]  # (n_phonemes, H), (n_phonemes,)
        self._g2idx = {g: i for i, g in enumerate(GRAPHEMES)}

    def predict(self, word: str) -> list[str]:
        ids = [self._g2idx.get(ch, 1) for ch in word] + [self._g2idx["</s>"]]
        h = np.zeros((1, self.encoder.hidden), np.float32)
        for index in ids:
            h = self.encoder.step(self.enc_emb[index][None, :], h)
        token = _START
        phones: list[str] = []
        for _ in range(_MAX_STEPS):
            h = self.decoder.step(self.dec_emb[token][None, :], h)
            logits = h @ self.fc_w.T + self.fc_b  # (1, n_phonemes)
            token = int(logits.argmax())
            if token == _END:
                break
            phones.append(PHONEMES[token] if token < len(PHONEMES) else "<unk>")
        return phones


@lru_cache(maxsize=1)
def neural_g2p() -> NeuralG2p:
    path = package_data_dir("g2p_en") / "checkpoint20.npz"
    _LOGGER.debug("loading g2p_en weights from %s", path)
    with np.load(path, allow_pickle=False) as data:
        return NeuralG2p({key: data[key] for key in data.files})
