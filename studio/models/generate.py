"""Autoregressive decoding of semantic tokens with the GPT (SPEC §5.4–5.6).

One loop, :func:`_decode`, serves every entry point. It prefills a KV cache with [text ; prompt], then decodes
one token per step for every unfinished sequence and reproduces upstream's decisions exactly:

* EOS is banned (its column dropped) while ``step < 11``;
* the repetition penalty counts every token of the sequence, prompt included, and rewrites the logits in
  place, so the EOS test ``argmax(logits) == EOS or sampled == EOS`` sees the penalised logits;
* a sequence that stops on EOS drops its last token (the EOS, or the sampled token when only the argmax
  was EOS); one that hits ``early_stop_num``/``max_steps`` keeps it in the single-sentence path and drops
  it in the batched path (upstream's two paths differ);
* the caller keeps ``sequence[-idx:]`` (the single-sentence path returns idx 0 without a prompt, i.e. all).

Entry points: :func:`generate_semantic` (one sentence, optional prompt, ``on_token`` hook),
:func:`stream_semantic` (the same, yielding chunks of tokens) and :func:`generate_semantic_batch` (several
sentences sharing one prompt, left-padded, finished sentences leave the batch).

Legend: ``B`` sentences, ``T_text`` phones, ``P`` prompt tokens, ``V`` semantic vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from studio.models.kv_cache import KVCache
from studio.models.sampling import sample_next_token
from studio.models.static_decode import static_decoder
from studio.models.text2semantic import Text2SemanticModel

MIN_STEPS_BEFORE_EOS = 11  # EOS cannot be produced at steps 0…10 (≥ 11 tokens ≈ 0.44 s)
DEFAULT_MAX_STEPS = 1500
INITIAL_STEPS = 256  # decoding steps a new KV cache has room for before it first grows


@dataclass
class GenerationResult:
    """What one sentence's decoding produced.

    ``tokens`` (T_new,) are the semantic tokens to synthesise (upstream's ``sequence[-idx:]``);
    ``sequence`` is upstream's returned y (prompt + generated, after the stop rule); ``idx`` upstream's returned
    idx; ``stop_reason`` one of ``"eos"``, ``"early_stop"``, ``"max_steps"``; ``step_logits`` (n_steps, V) the
    raw logits of every step when requested.
    """

    tokens: torch.Tensor
    sequence: torch.Tensor
    idx: int
    n_steps: int
    stop_reason: str
    step_logits: torch.Tensor | None = None


@dataclass
class SemanticChunk:
    """A piece of the token stream. The final chunk carries the full :class:`GenerationResult`."""

    tokens: torch.Tensor  # (n,) int64, the tokens generated since the previous chunk
    final: bool = False
    result: GenerationResult | None = None


@dataclass(frozen=True)
class _Options:
    top_k: int | None
    top_p: float | None
    temperature: float
    repetition_penalty: float
    early_stop_num: int
    max_steps: int
    record_logits: bool
    drop_last_on_cap: bool  # batched path: y[i, :-1] also on early stop / max steps
    reference_free: bool


@dataclass
class _Row:
    logits: list[torch.Tensor] = field(default_factory=list)


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 2 else t.unsqueeze(0)


def _as_3d(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 3 else t.unsqueeze(0)


def _finish(seq: torch.Tensor, idx: int, reason: str, opts: _Options, row: _Row) -> GenerationResult:
    if seq.numel() == 0:  # upstream's "bad zero prediction" guard
        seq = torch.zeros(1, dtype=torch.long, device=seq.device)
    returned_idx = 0 if opts.reference_free else idx
    logits = torch.stack(row.logits) if opts.record_logits and row.logits else None
    return GenerationResult(seq[-returned_idx:], seq, returned_idx, idx + 1, reason, logits)


def _decode(
    model: Text2SemanticModel,
    text_emb: torch.Tensor,
    text_padding: torch.Tensor | None,
    prompt: torch.Tensor,
    opts: _Options,
    generator: torch.Generator | None,
) -> Generator[tuple[int, int, int], None, list[GenerationResult]]:
    """The decoding loop. text_emb (B, T_text, D), prompt (B, P) (P may be 0).

    Yields (sentence index, step, token) for every token that stays in a sentence's sequence; returns one
    :class:`GenerationResult` per sentence.
    """
    B, n_prompt = prompt.shape
    eos = model.config.eos
    static = static_decoder(model)  # CUDA: fixed-shape steps replayed as CUDA graphs (None: the dynamic path)
    # Room for the prefix and the first steps; the cache grows (by half) when a long sentence needs more, so a
    # short one never holds the keys/values of 1,500 steps it will not take.
    cache = static or KVCache.for_model(model, B, text_emb.shape[1] + n_prompt + min(opts.max_steps, INITIAL_STEPS))
    runner = static or model
    y = prompt.long()  # (B, P + steps so far)
    active = list(range(B))  # original sentence index of each remaining row
    rows = [_Row() for _ in range(B)]
    results: list[GenerationResult | None] = [None] * B
    logits = runner.prefill(text_emb, prompt if n_prompt else None, cache, text_padding=text_padding)
    for idx in range(opts.max_steps):
        if idx > 0:
            if static is None:
                cache.reserve(1)
            logits = runner.decode_step(y[:, -1:], n_prompt + idx - 1, cache)  # (B, V)
        if opts.record_logits:
            for r, b in enumerate(active):
                rows[b].logits.append(logits[r].detach().clone())
        step_logits = logits[:, :-1] if idx < MIN_STEPS_BEFORE_EOS else logits
        samples = sample_next_token(
            step_logits,
            y,
            top_k=opts.top_k,
            top_p=opts.top_p,
            temperature=opts.temperature,
            repetition_penalty=opts.repetition_penalty,
            generator=generator,
        )  # (B, 1); step_logits now carry the penalty
        y = torch.cat([y, samples], dim=1)
        is_eos = (samples[:, 0] == eos) | (step_logits.argmax(dim=-1) == eos)  # (B,)
        early = opts.early_stop_num != -1 and (y.shape[1] - n_prompt) > opts.early_stop_num
        capped = early or idx == opts.max_steps - 1
        keep: list[int] = []
        for r, b in enumerate(active):
            if bool(is_eos[r]):
                results[b] = _finish(y[r, :-1], idx, "eos", opts, rows[b])
            elif capped:
                seq = y[r, :-1] if opts.drop_last_on_cap else y[r]
                if not opts.drop_last_on_cap:
                    yield b, idx, int(y[r, -1])
                results[b] = _finish(seq, idx, "early_stop" if early else "max_steps", opts, rows[b])
            else:
                keep.append(r)
                yield b, idx, int(y[r, -1])
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, device=y.device)
            y, logits = y.index_select(0, index), logits.index_select(0, index)
            cache.keep(index)
            active = [active[r] for r in keep]
    return [r for r in results if r is not None]


def _sampling_kwargs(
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    repetition_penalty: float,
    early_stop_num: int | None,
    max_steps: int,
    record_logits: bool,
) -> dict:
    """The sampling settings every entry point passes on, by name (to :func:`_options` or :func:`generate_semantic`)."""
    return dict(
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        early_stop_num=early_stop_num,
        max_steps=max_steps,
        record_logits=record_logits,
    )


def _options(
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    repetition_penalty: float,
    early_stop_num: int | None,
    max_steps: int,
    record_logits: bool,
    *,
    batched: bool,
    reference_free: bool,
) -> _Options:
    if max_steps < 1:
        raise ValueError(f"max_steps must be ≥ 1, got {max_steps}")
    return _Options(
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
        early_stop_num=-1 if early_stop_num is None else int(early_stop_num),
        max_steps=max_steps,
        record_logits=record_logits,
        drop_last_on_cap=batched,
        reference_free=reference_free,
    )


def _single_decoder(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt_tokens: torch.Tensor | None,
    opts_kwargs: dict,
    generator: torch.Generator | None,
) -> Generator[tuple[int, int, int], None, list[GenerationResult]]:
    w = model.bert_proj.weight
    phone_ids = _as_2d(phone_ids).to(w.device)  # (1, T_text)
    bert = _as_3d(bert).to(device=w.device, dtype=w.dtype)  # (1, bert_dim, T_text)
    if prompt_tokens is None:
        prompt = torch.zeros(1, 0, dtype=torch.long, device=phone_ids.device)
    else:
        prompt = _as_2d(prompt_tokens).to(phone_ids.device)  # (1, P)
    opts = _options(**opts_kwargs, batched=False, reference_free=prompt_tokens is None)
    text_emb = model.embed_text(phone_ids, bert)
    return _decode(model, text_emb, None, prompt, opts, generator)


@torch.inference_mode()
def generate_semantic(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt_tokens: torch.Tensor | None,
    *,
    top_k: int | None = 15,
    top_p: float | None = 1.0,
    temperature: float = 1.0,
    repetition_penalty: float = 1.35,
    early_stop_num: int | None = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    generator: torch.Generator | None = None,
    on_token: Callable[[int, int], None] | None = None,
    record_logits: bool = False,
) -> GenerationResult:
    """Decode one sentence. phone_ids (T_text,) or (1, T_text) = prompt phones ++ target phones (target only
    without a prompt); bert (bert_dim, T_text) or (1, bert_dim, T_text); prompt_tokens (P,)/(1, P) or None
    for reference-free mode. ``on_token(token, step)`` is called for each token that stays in the sequence.
    """
    opts_kwargs = _sampling_kwargs(
        top_k, top_p, temperature, repetition_penalty, early_stop_num, max_steps, record_logits
    )
    loop = _single_decoder(model, phone_ids, bert, prompt_tokens, opts_kwargs, generator)
    while True:
        try:
            _, step, token = next(loop)
        except StopIteration as done:
            return done.value[0]
        if on_token is not None:
            on_token(token, step)


def stream_semantic(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    bert: torch.Tensor,
    prompt_tokens: torch.Tensor | None,
    *,
    chunk_size: int = 16,
    top_k: int | None = 15,
    top_p: float | None = 1.0,
    temperature: float = 1.0,
    repetition_penalty: float = 1.35,
    early_stop_num: int | None = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    generator: torch.Generator | None = None,
    cut_at_silence: bool = False,
    first_chunk_size: int | None = None,
) -> Iterator[SemanticChunk]:
    """Like :func:`generate_semantic`, yielding every ``chunk_size`` new tokens, then a final chunk with the
    remainder and the result. The chunks concatenate to every generated token that stayed in the sequence;
    ``result.tokens`` additionally applies upstream's ``[-idx:]`` slice (which drops the first token when
    decoding stops on the step cap).

    ``cut_at_silence`` (upstream's streaming mode 2): instead of every ``chunk_size`` tokens, cut where the
    tokens sound most like a pause — see :func:`silence_cut` — so chunk joins fall into quiet places.

    ``first_chunk_size``: the first chunk is this short and each next one twice as long, up to ``chunk_size``
    (the first audio comes sooner; later chunks amortise the decoder's context). None: every chunk is
    ``chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    size = chunk_size if first_chunk_size is None else max(1, min(first_chunk_size, chunk_size))
    silence = silence_similarity(model) if cut_at_silence else None
    opts_kwargs = _sampling_kwargs(top_k, top_p, temperature, repetition_penalty, early_stop_num, max_steps, False)
    with torch.inference_mode():
        loop = _single_decoder(model, phone_ids, bert, prompt_tokens, opts_kwargs, generator)
    pending: list[int] = []
    while True:
        with torch.inference_mode():
            try:
                _, _, token = next(loop)
            except StopIteration as done:
                result = done.value[0]
                break
        pending.append(token)
        if silence is not None:
            cut = silence_cut(pending, silence, chunk_size)
        else:
            cut = size if len(pending) == size else 0
        if cut:
            yield SemanticChunk(torch.tensor(pending[:cut], dtype=torch.long))
            pending = pending[cut:]
            size = min(2 * size, chunk_size)
    yield SemanticChunk(torch.tensor(pending, dtype=torch.long), final=True, result=result)


MUTE_TOKEN = 486  # upstream's reference "silence" semantic token (SPEC §5.7)


def silence_similarity(model: Text2SemanticModel) -> torch.Tensor:
    """(V,) cosine similarity of every semantic token's embedding with the mute token's."""
    table = model.ar_audio_embedding.word_embeddings.weight.detach().float()  # (V, D)
    return F.cosine_similarity(table, table[MUTE_TOKEN].unsqueeze(0), dim=-1).cpu()


def silence_cut(pending: list[int], similarity: torch.Tensor, chunk_size: int, threshold: float = 0.0) -> int:
    """How many of the ``pending`` tokens to send now (0 = keep generating), upstream's mode-2 rule.

    Once ``chunk_size + 2`` tokens wait, each scores its similarity to the mute token minus ``threshold``
    (negative → −1) plus its right neighbour's score, favouring two silence-like tokens in a row; the best
    position is the cut if its score is ≥ 0 and at least ``chunk_size`` tokens lie up to it. Unlike upstream,
    only the tokens up to the cut are sent (upstream re-sends the ones after it in the next chunk).
    """
    if len(pending) < chunk_size + 2:
        return 0
    score = similarity[torch.tensor(pending)] - threshold
    score = torch.where(score < 0, torch.full_like(score, -1.0), score)
    score[:-1] = score[:-1] + score[1:]
    best = int(torch.argmax(score))
    return best + 1 if score[best] >= 0 and best + 1 >= chunk_size else 0


@torch.inference_mode()
def generate_semantic_batch(
    model: Text2SemanticModel,
    items: Sequence[tuple[torch.Tensor, torch.Tensor]],
    prompt_tokens: torch.Tensor | None,
    *,
    top_k: int | None = 15,
    top_p: float | None = 1.0,
    temperature: float = 1.0,
    repetition_penalty: float = 1.35,
    early_stop_num: int | None = -1,
    max_steps: int = DEFAULT_MAX_STEPS,
    generator: torch.Generator | None = None,
    record_logits: bool = False,
) -> list[GenerationResult]:
    """Decode several sentences at once, all continuing the same prompt (upstream ``infer_panel_batch_infer``).

    ``items`` = [(phone_ids (T_i,), bert (bert_dim, T_i)), …]. Texts are embedded one by one and left-padded
    to the longest; padded positions are never attended to. Without a prompt each sentence is decoded alone
    with :func:`generate_semantic` (as upstream falls back to its single-sentence loop).
    """
    kwargs = _sampling_kwargs(top_k, top_p, temperature, repetition_penalty, early_stop_num, max_steps, record_logits)
    if not items:
        return []
    if prompt_tokens is None:
        return [generate_semantic(model, x, b, None, generator=generator, **kwargs) for x, b in items]
    w = model.bert_proj.weight
    embedded = [
        model.embed_text(_as_2d(x).to(w.device), _as_3d(b).to(device=w.device, dtype=w.dtype))[0] for x, b in items
    ]  # each (T_i, D)
    max_len = max(e.shape[0] for e in embedded)
    text_emb = torch.stack([F.pad(e, (0, 0, max_len - e.shape[0], 0)) for e in embedded])  # (B, max_len, D)
    lengths = torch.tensor([e.shape[0] for e in embedded], device=text_emb.device)
    text_padding = torch.arange(max_len, device=text_emb.device)[None, :] < (max_len - lengths)[:, None]
    prompt = _as_2d(prompt_tokens).to(text_emb.device).expand(len(items), -1)  # (B, P)
    opts = _options(**kwargs, batched=True, reference_free=False)
    loop = _decode(model, text_emb, text_padding, prompt, opts, generator)
    while True:
        try:
            next(loop)
        except StopIteration as done:
            return done.value
