"""Training records: :class:`Utterance` (one clip's features), :class:`GPTBatch` and :class:`SoVITSBatch`
(padded tensors), the collate functions and a seeded bucketing sampler.

Filters follow SPEC §9.3 / §9.4: the GPT drops clips with more than 54 s of tokens, too many phones or a
phone rate outside 3–25 phones per second; SoVITS keeps clips between 0.6 s and 54 s.

Legend: ``B`` batch, ``T_text`` phones, ``T_sem`` 25 Hz tokens, ``T`` 50 Hz frames (= spectrogram frames,
padded to an even count so the 25 Hz quantizer round-trips), ``F`` 1025 linear bins, ``N`` samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from studio.audio.spectrogram import linear_spectrogram
from studio.corpus import PHONES_PER_SECOND, SEMANTIC_TOKENS_PER_SECOND
from studio.training.features import FeatureSet, load_item

_LOGGER = logging.getLogger(__name__)

SEMANTIC_RATE = SEMANTIC_TOKENS_PER_SECOND
MAX_SECONDS = 54.0
MIN_SOVITS_SECONDS = 0.6
PHONE_RATE_RANGE = PHONES_PER_SECOND
BERT_DIM = 1024
HOP = 640
PAD_PHONE = 0
PAD_SEMANTIC = 1024


@dataclass
class Utterance:
    key: str
    language: str
    phone_ids: torch.Tensor  # (T_text,) int64
    bert: torch.Tensor | None  # (1024, T_text) or None = zeros
    semantic: torch.Tensor  # (T_sem,) int64
    ssl: torch.Tensor  # (768, T_ssl)
    wav: torch.Tensor  # (N,) float32 in [-1, 1] (the int16 training wav / 32768)
    sv_emb: torch.Tensor | None = None  # (E,) speaker-verification embedding (v2Pro/v2ProPlus bases), else None

    @property
    def seconds(self) -> float:
        return self.wav.numel() / 32000

    def bert_or_zeros(self) -> torch.Tensor:
        return self.bert if self.bert is not None else torch.zeros(BERT_DIM, self.phone_ids.numel())


def load_utterances(features: FeatureSet) -> list[Utterance]:
    out = []
    for item in features.items:
        t = load_item(features, item)
        out.append(
            Utterance(
                item.key,
                item.language,
                t["phone_ids"].long(),
                t["bert"].float() if "bert" in t else None,
                t["semantic"].long(),
                t["ssl"].float(),
                t["wav"].float() / 32768.0,
                t["sv_emb"].float() if "sv_emb" in t else None,
            )
        )
    return out


def gpt_usable(u: Utterance) -> bool:
    n_sem, n_ph = u.semantic.numel(), u.phone_ids.numel()
    if n_sem == 0 or n_ph == 0 or n_sem > MAX_SECONDS * SEMANTIC_RATE or n_ph > MAX_SECONDS * SEMANTIC_RATE / 2.5:
        return False
    rate = n_ph / (n_sem / SEMANTIC_RATE)
    return PHONE_RATE_RANGE[0] <= rate <= PHONE_RATE_RANGE[1]


def sovits_usable(u: Utterance) -> bool:
    return MIN_SOVITS_SECONDS < u.seconds < MAX_SECONDS and u.phone_ids.numel() > 0


class _Batch:
    def to(self, device: torch.device | str):
        kwargs = {f.name: _to(getattr(self, f.name), device) for f in fields(self)}  # type: ignore[arg-type]
        return type(self)(**kwargs)

    @property
    def size(self) -> int:
        return int(getattr(self, fields(self)[0].name).shape[0])  # type: ignore[arg-type]


@dataclass
class GPTBatch(_Batch):
    phone_ids: torch.Tensor  # (B, T_text), right-padded with 0
    phone_lens: torch.Tensor  # (B,)
    bert: torch.Tensor  # (B, 1024, T_text), zero-padded
    semantic: torch.Tensor  # (B, T_sem), right-padded with 1024 (EOS)
    semantic_lens: torch.Tensor  # (B,)


@dataclass
class SoVITSBatch(_Batch):
    ssl: torch.Tensor  # (B, 768, T)
    spec: torch.Tensor  # (B, F, T)
    spec_lens: torch.Tensor  # (B,)
    wav: torch.Tensor  # (B, 1, T · hop)
    phone_ids: torch.Tensor  # (B, T_text)
    phone_lens: torch.Tensor  # (B,)
    sv_emb: torch.Tensor | None = None  # (B, E) each clip's speaker-verification embedding (v2Pro bases)


def _to(x: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    return None if x is None else x.to(device)


def _pad_stack(items: list[torch.Tensor], length: int, value: float) -> torch.Tensor:
    return torch.stack([F.pad(t, (0, length - t.shape[-1]), value=value) for t in items])


def collate_gpt(batch: list[Utterance]) -> GPTBatch:
    phone_lens = torch.tensor([u.phone_ids.numel() for u in batch])
    sem_lens = torch.tensor([u.semantic.numel() for u in batch])
    t_text, t_sem = int(phone_lens.max()), int(sem_lens.max())
    return GPTBatch(
        phone_ids=_pad_stack([u.phone_ids for u in batch], t_text, PAD_PHONE),
        phone_lens=phone_lens,
        bert=_pad_stack([u.bert_or_zeros() for u in batch], t_text, 0.0),
        semantic=_pad_stack([u.semantic for u in batch], t_sem, PAD_SEMANTIC),
        semantic_lens=sem_lens,
    )


def sovits_item(u: Utterance, cache: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ssl (768, T), spec (F, T)) with the SSL frames made to match the spectrogram frames (the last SSL
    frame is repeated when short, extra frames are dropped)."""
    spec = cache.get(u.key)
    if spec is None:
        spec = cache[u.key] = linear_spectrogram(u.wav[None])[0]  # (F, T)
    t = spec.shape[-1]
    ssl = u.ssl[:, :t]
    if ssl.shape[-1] < t:
        ssl = F.pad(ssl[None], (0, t - ssl.shape[-1]), mode="replicate")[0]
    return ssl, spec


def collate_sovits(batch: list[Utterance], spec_cache: dict[str, torch.Tensor]) -> SoVITSBatch:
    pairs = [sovits_item(u, spec_cache) for u in batch]
    spec_lens = torch.tensor([s.shape[-1] for _, s in pairs])
    t = int(spec_lens.max())
    t += t % 2  # even, so ssl_proj (stride 2) then ×2 upsampling gives back T frames
    phone_lens = torch.tensor([u.phone_ids.numel() for u in batch])
    wavs = [u.wav[: s.shape[-1] * HOP] for u, (_, s) in zip(batch, pairs)]
    return SoVITSBatch(
        ssl=_pad_stack([x for x, _ in pairs], t, 0.0),
        spec=_pad_stack([s for _, s in pairs], t, 0.0),
        spec_lens=spec_lens,
        wav=_pad_stack(wavs, t * HOP, 0.0)[:, None],
        phone_ids=_pad_stack([u.phone_ids for u in batch], int(phone_lens.max()), PAD_PHONE),
        phone_lens=phone_lens,
        sv_emb=_stack_sv([u.sv_emb for u in batch]),
    )


def _stack_sv(embs: list[torch.Tensor | None]) -> torch.Tensor | None:
    """(B, E) when every clip has an SV embedding, None when none has; a mix means stale features."""
    present = [e for e in embs if e is not None]
    if not present:
        return None
    if len(present) != len(embs):
        raise ValueError("some clips lack their speaker-verification embedding; extract the features again")
    return torch.stack(present)


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Bucketed batches for one epoch: a seeded shuffle, items of similar length grouped (pools of 32 batches
    sorted by length), then the batch order shuffled. The same (seed, epoch) always gives the same batches."""
    n = len(lengths)
    batch_size = max(1, min(batch_size, n))
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    pool = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]


def steps_per_epoch(n_items: int, batch_size: int) -> int:
    batch_size = max(1, min(batch_size, n_items))
    return -(-n_items // batch_size)
