"""The short sample a training job writes after each epoch: a fixed sentence, spoken with the current weights.

This is a minimal synthesis path built from the models directly (the full inference layer is a sibling
package that training must not import): reference = one clip of the dataset (its phones, BERT features and
semantic tokens as the GPT prompt, its spectrogram for the voice), the GPT continues the prompt for the
fixed sentence (top-k 15, seeded), and SoVITS decodes the new tokens (noise scale 0.5, seeded; a v2Pro/v2ProPlus
SoVITS also reads the reference clip's cached speaker-verification embedding).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from studio.audio.io import save_wav
from studio.audio.spectrogram import linear_spectrogram
from studio.models.generate import generate_semantic
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.text2semantic import Text2SemanticModel
from studio.training.datasets import Utterance

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 32000
SAMPLE_SENTENCES = {
    "en": "Every evening I take a short walk and listen to the birds.",
    "zh": "今天的天气很好，我们一起去公园散步吧。",
    "ja": "今日はとても良い天気なので、散歩に行きましょう。",
    "yue": "今日天气好好，我哋一齐去公园行下啦。",
    "ko": "오늘은 날씨가 좋아서 산책을 가요.",
}


@dataclass
class SampleSpec:
    """What every sample of a run shares: the sentence's phones and features, the reference clip, the seed."""

    phone_ids: torch.Tensor  # (T_text,) of the sentence
    bert: torch.Tensor  # (1024, T_text)
    reference: Utterance
    seed: int
    max_tokens: int


def pick_reference(utterances: list[Utterance]) -> Utterance:
    """The clip closest to 5 s (a typical 3–10 s reference)."""
    return min(utterances, key=lambda u: abs(u.seconds - 5.0))


def sample_spec(
    utterances: list[Utterance], language: str, text: str | None, seed: int, max_tokens: int, bert_model=None
) -> SampleSpec:
    """Phones (and zh BERT features through ``bert_model`` when given) of the sample sentence."""
    from studio.text.frontend import text_to_phones

    text = text or SAMPLE_SENTENCES.get(language, SAMPLE_SENTENCES["en"])
    seq = text_to_phones(text, language if language in SAMPLE_SENTENCES else "en")
    phone_ids = torch.tensor(seq.phone_ids, dtype=torch.long)
    bert = torch.zeros(1024, len(phone_ids))
    for seg in seq.segments:
        if seg.needs_bert and bert_model is not None and seg.phones:
            bert[:, seg.start : seg.end] = bert_model.phone_features(seg.norm_text, seg.word2ph or []).float().cpu()
    return SampleSpec(phone_ids, bert, pick_reference(utterances), seed, max_tokens)


@torch.no_grad()
def synthesize_sample(spec: SampleSpec, gpt: Text2SemanticModel, sovits: SoVITSSynthesizer, path: Path) -> Path:
    """Write the sample to ``path`` (32 kHz PCM16). Both models are put in eval mode for the call and back."""
    modes = gpt.training, sovits.training
    gpt.eval()
    sovits.eval()
    try:
        device = gpt.bert_proj.weight.device
        ref = spec.reference
        phones = torch.cat([ref.phone_ids, spec.phone_ids]).to(device)  # (T_ref + T_text,)
        bert = torch.cat([ref.bert_or_zeros(), spec.bert], dim=1).to(device)  # (1024, T)
        g = torch.Generator(device=device).manual_seed(spec.seed)
        result = generate_semantic(
            gpt, phones, bert, ref.semantic.to(device), top_k=15, max_steps=spec.max_tokens, generator=g
        )
        tokens = result.tokens.reshape(1, 1, -1).to(device)  # (Q, B, T_sem)
        sdev = next(sovits.parameters()).device
        refer = linear_spectrogram(ref.wav[None].to(sdev))  # (1, F, T_spec)
        g2 = torch.Generator(device=sdev).manual_seed(spec.seed)
        sv = None if ref.sv_emb is None else [ref.sv_emb[None].to(sdev)]  # v2Pro/v2ProPlus: [(1, E)]
        wav = sovits.decode(
            tokens.to(sdev), spec.phone_ids[None].to(sdev), refer, noise_scale=0.5, generator=g2, sv_emb=sv
        )
        audio = wav[0, 0].float().cpu()
        peak = float(audio.abs().max()) if audio.numel() else 0.0
        if peak > 1.0:
            audio = audio / peak
        path.parent.mkdir(parents=True, exist_ok=True)
        save_wav(path, audio.numpy(), SAMPLE_RATE)
        return path
    finally:
        gpt.train(modes[0])
        sovits.train(modes[1])
