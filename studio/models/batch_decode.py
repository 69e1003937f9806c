"""Continuous batching of GPT decoding: sentences of different requests share one decoding step.

Why: a decode step at batch 1 reads every GPT weight for one token; the same read serves eight rows almost as
cheaply. :class:`ContinuousDecoder` keeps one batch of rows — each one sentence of one request, with its own
phones, BERT features, prompt, sampling settings, step cap and ``torch.Generator`` — that rows join and leave
at every step.

How a row stays what it would be alone (:func:`studio.models.generate.generate_semantic`):

* it is prefilled alone (batch 1, ``model.prefill``), exactly as the single-sentence path does; its keys and
  values are then copied into the shared :class:`KVCache`, right-aligned with the other rows (the positions
  in front of its own are blocked). The GPT adds positions to the embeddings before its layers, so a key's
  slot in the cache is irrelevant: only which keys a query may see matters, and the mask gives each row its own;
* each decoding step embeds every row's last token at that row's own semantic position (the model's own
  embedding modules), runs the layers once for all rows, and samples each row on its own (1, V) logits with
  its own generator and settings, by :func:`studio.models.generate`'s exact rules (EOS banned before step 11,
  the repetition penalty rewriting the logits in place before the EOS test, the single-sentence stop rules and
  ``[-idx:]`` slice) — so each row draws the same exponential variates as alone.

Tolerance: the sampling is the same, but a batched matrix product (and attention over a masked, longer key
range) may round differently from batch 1 in the last bits. In fp32 on CPU, teacher-forced logits agree with
the lone path within ``LOGITS_ATOL`` (absolute; the tiny test GPT measures ≤ 1e-6 on logits of magnitude ~2,
the bound leaves room for the 24-layer official size). A token can therefore differ only where two candidates
tie to within that after the exponential race; the tests require identical tokens. In a lighter precision mode
(16-bit keys/values, bf16 attention) the batched step rounds differently by about that mode's own error against
fp32 (~1e-2 on the tiny GPT's logits), so a request batched there may pick other tokens than alone, within
the quality bounds its mode documents (``studio.models.precision``).

Legend: ``B`` rows, ``V`` semantic vocabulary, ``D`` model width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from studio.models.generate import (
    DEFAULT_MAX_STEPS,
    MIN_STEPS_BEFORE_EOS,
    GenerationResult,
    _as_2d,
    _as_3d,
    _finish,
    _Options,
    _options,
    _Row,
    _sampling_kwargs,
)
from studio.models.kv_cache import KVCache
from studio.models.sampling import sample_next_token
from studio.models.text2semantic import Text2SemanticModel

LOGITS_ATOL = 1e-4  # batched vs alone, fp32 on CPU (see the module docstring)


@dataclass
class DecodeRow:
    """One sentence in the batch: its inputs, settings and progress.

    ``y`` (1, P + steps) is the prompt plus every sampled token (the lone path's ``y``); ``logits`` (1, V) the
    logits the next step samples from; ``result`` is set once the row has stopped.
    """

    phone_ids: torch.Tensor  # (1, T_text)
    bert: torch.Tensor  # (1, bert_dim, T_text)
    prompt: torch.Tensor  # (1, P), P may be 0
    opts: _Options
    generator: torch.Generator | None
    on_token: Callable[[int, int], None] | None = None
    tag: object = None  # the caller's handle (the scheduler's ticket)
    y: torch.Tensor | None = None
    idx: int = 0
    logits: torch.Tensor | None = None
    result: GenerationResult | None = None
    record: _Row = field(default_factory=_Row)

    @property
    def n_prompt(self) -> int:
        return self.prompt.shape[1]


def make_row(
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
    tag: object = None,
) -> DecodeRow:
    """A row with :func:`generate_semantic`'s arguments (same shapes, same defaults)."""
    w = model.bert_proj.weight
    phone_ids = _as_2d(phone_ids).to(w.device)
    bert = _as_3d(bert).to(device=w.device, dtype=w.dtype)
    if prompt_tokens is None:
        prompt = torch.zeros(1, 0, dtype=torch.long, device=w.device)
    else:
        prompt = _as_2d(prompt_tokens).to(w.device).long()
    kwargs = _sampling_kwargs(top_k, top_p, temperature, repetition_penalty, early_stop_num, max_steps, record_logits)
    opts = _options(**kwargs, batched=False, reference_free=prompt_tokens is None)
    return DecodeRow(phone_ids, bert, prompt, opts, generator, on_token, tag)


class ContinuousDecoder:
    """A decoding batch of one GPT that rows :meth:`join` and leave; :meth:`step` advances every row by one token.

    Not thread-safe: one thread drives it (``studio.inference.batching`` does, holding the model's lock per step).
    """

    def __init__(self, model: Text2SemanticModel) -> None:
        self.model = model
        self.cache = KVCache.for_model(model, 0, 0)
        self.rows: list[DecodeRow] = []  # in cache order
        self.joining: list[tuple[DecodeRow, KVCache]] = []

    def __len__(self) -> int:
        return len(self.rows) + len(self.joining)

    @torch.inference_mode()
    def join(self, row: DecodeRow) -> None:
        """Prefill ``row`` alone (as the lone path does); it samples its first token at the next :meth:`step`."""
        text_emb = self.model.embed_text(row.phone_ids, row.bert)  # (1, T_text, D)
        cache = KVCache.for_model(self.model, 1, text_emb.shape[1] + row.n_prompt)
        row.logits = self.model.prefill(text_emb, row.prompt if row.n_prompt else None, cache)  # (1, V)
        row.y = row.prompt
        self.joining.append((row, cache))

    def leave(self, rows: list[DecodeRow]) -> None:
        """Take ``rows`` out (a cancelled request) without touching the others."""
        gone = {id(r) for r in rows}
        self.joining = [(r, c) for r, c in self.joining if id(r) not in gone]
        self._keep([r for r in self.rows if id(r) not in gone])

    @torch.inference_mode()
    def step(self) -> list[DecodeRow]:
        """Sample one token for every row, let stopped rows leave and new ones in, then run one batched decoding
        step for the rows that go on. Returns the rows that stopped (``row.result`` set)."""
        done = [row for row in [*self.rows, *(r for r, _ in self.joining)] if self._sample(row)]
        finished = {id(r) for r in done}
        self._keep([r for r in self.rows if id(r) not in finished])
        for row, cache in self.joining:
            if id(row) not in finished:
                self.cache.add_rows(cache)
                self.rows.append(row)
        self.joining = []
        if self.rows:
            self._decode()
        return done

    def _keep(self, rows: list[DecodeRow]) -> None:
        if len(rows) == len(self.rows):
            return
        index = {id(r): i for i, r in enumerate(self.rows)}
        self.cache.keep(torch.tensor([index[id(r)] for r in rows], dtype=torch.long))
        self.rows = rows
        self.cache.trim_front()

    def _decode(self) -> None:
        """One step for all rows: each row's last token at its own semantic position → logits (B, V)."""
        model = self.model
        tokens = torch.cat([row.y[:, -1:] for row in self.rows])  # (B, 1)
        positions = [row.n_prompt + row.idx - 1 for row in self.rows]
        x = model.ar_audio_embedding(tokens)  # (B, 1, D)
        table = model.ar_audio_position.rows(0, max(positions) + 1)  # (max_pos+1, D)
        pe = table[torch.tensor(positions, device=table.device)].unsqueeze(1).to(x.dtype)  # (B, 1, D)
        y = x + model.ar_audio_position.alpha * pe  # as SinePositionalEncoding.forward (its dropout is off in eval)
        self.cache.reserve(1)
        logits = model.step_logits(y, self.cache)  # (B, V); with ONNX Runtime one call, output layer included
        for r, row in enumerate(self.rows):
            row.logits = logits[r : r + 1]

    def _sample(self, row: DecodeRow) -> bool:
        """The lone loop's body for one row (``_decode`` in generate.py with B = 1); True when the row stopped."""
        opts, idx = row.opts, row.idx
        logits = row.logits
        if opts.record_logits:
            row.record.logits.append(logits[0].detach().clone())
        step_logits = logits[:, :-1] if idx < MIN_STEPS_BEFORE_EOS else logits
        samples = sample_next_token(
            step_logits,
            row.y,
            top_k=opts.top_k,
            top_p=opts.top_p,
            temperature=opts.temperature,
            repetition_penalty=opts.repetition_penalty,
            generator=row.generator,
        )  # (1, 1); step_logits now carry the penalty
        row.y = torch.cat([row.y, samples], dim=1)
        eos = self.model.config.eos
        is_eos = int(samples[0, 0]) == eos or int(step_logits.argmax(dim=-1)[0]) == eos
        early = opts.early_stop_num != -1 and (row.y.shape[1] - row.n_prompt) > opts.early_stop_num
        capped = early or idx == opts.max_steps - 1
        row.idx += 1
        if is_eos:
            row.result = _finish(row.y[0, :-1], idx, "eos", opts, row.record)
            return True
        if row.on_token is not None:
            row.on_token(int(row.y[0, -1]), idx)
        if capped:
            row.result = _finish(row.y[0], idx, "early_stop" if early else "max_steps", opts, row.record)
            return True
        return False


def decode_together(model: Text2SemanticModel, rows: list[DecodeRow], join_at: list[int] | None = None) -> list:
    """Decode ``rows`` in one batch, row i joining at step ``join_at[i]`` (default: all at once); returns their
    results in order. The batched counterpart of calling :func:`generate_semantic` per row (tests, benches)."""
    join_at = join_at or [0] * len(rows)
    decoder = ContinuousDecoder(model)
    step = 0
    while any(r.result is None for r in rows):
        for row, at in zip(rows, join_at, strict=True):
            if at == step or (at < step and row.y is None):
                decoder.join(row)
        decoder.step()
        step += 1
    return [row.result for row in rows]
