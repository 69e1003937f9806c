"""Static-shape GPT decoding: a step with fixed shapes and no host sync, replayed as a CUDA graph on a GPU.

Why: on a GPU the decoding step at batch 1 is bound by kernel launches — about 300 small kernels per token (24
layers × projections, attention, norms, FFN), each taking longer to launch than to run. A CUDA graph replays
them all with one launch, but it fixes every shape and address, so here:

* keys/values live in a preallocated buffer of a *bucket's* capacity (256, 512, 1024, 2048 positions by
  default, doubling beyond); a sequence that outgrows its bucket moves to the next one by copying. Buffers and
  their graphs are kept with the model (a graph per bucket and batch size, captured after two eager steps);
* the new token, its semantic position and the cache column it is written to are device tensors, filled
  before each step (no Python int reaches the step);
* attention always spans the whole bucket; the allowed-mask is built inside the step from the write column
  and the padding map, so masked columns weigh exactly 0 (unused columns are zeroed, never NaN).

The step runs the model's own modules (the embeddings, ``model.h`` with a cache object that writes at the
device column, ``model.ar_predict_layer``), so the precision modes of ``studio.models.precision`` work
unchanged. On CPU the same step runs eagerly; the tests compare it with the dynamic path there.

Half precision (the GPU default for a model no precision mode was chosen for; a chosen mode, fp32 included,
wins): the step runs in a 16-bit copy of the GPT — bf16 where the GPU supports it, else fp16. The prefill
always runs in fp32 (the dynamic path). Each 16-bit step's logits are checked for NaN/inf (one host sync; the
loop syncs every step anyway); at the first bad one the sequence is prefilled again in fp32 over every token so
far — the fp32 path's logits at that step — and stays fp32 to its end.

Shapes: ``B`` rows, ``L`` bucket capacity, ``H`` heads, ``Dh`` head width, ``V`` vocabulary, ``D`` width.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch

from studio.models.kv_cache import KVCache
from studio.models.text2semantic import Text2SemanticModel

_LOGGER = logging.getLogger(__name__)

BUCKETS = (256, 512, 1024, 2048)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CAPTURE_AFTER = 2  # eager steps of a slot before its step is captured
ENV_SWITCH = "STUDIO_STATIC_DECODE"  # auto | on | off: overrides every model's ``use`` (an escape hatch)


@dataclass(frozen=True)
class StaticDecodeConfig:
    """How a model decodes. ``use``: "auto" = on CUDA models only, "on" = also on CPU (eager, for tests),
    "off" = always the dynamic path. ``dtype``: "auto" = on CUDA bf16 where the GPU supports it, else fp16, and
    fp32 elsewhere — unless a precision mode was chosen for the model (then that mode); or fp32 / bf16 / fp16."""

    use: str = "auto"
    dtype: str = "auto"
    buckets: tuple[int, ...] = BUCKETS
    cuda_graphs: bool = True  # capture each bucket's step on CUDA (False: eager static steps, for comparison)
    max_slots: int = 8  # buffer sets (each with its graph) kept per model

    def __post_init__(self) -> None:
        if self.use not in ("auto", "on", "off"):
            raise ValueError(f"StaticDecodeConfig.use must be auto, on or off, got {self.use!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"StaticDecodeConfig.dtype must be auto, {', '.join(DTYPES)}; got {self.dtype!r}")
        if not self.buckets or any(b < 1 for b in self.buckets) or list(self.buckets) != sorted(self.buckets):
            raise ValueError(f"buckets must be increasing positive capacities, got {self.buckets}")


def configure_static_decode(model: Text2SemanticModel, config: StaticDecodeConfig | None) -> None:
    """Choose how ``model`` decodes from now on (None: the default, :class:`StaticDecodeConfig`)."""
    model.static_decode = config


def decode_config(model: Text2SemanticModel) -> StaticDecodeConfig:
    config = getattr(model, "static_decode", None) or StaticDecodeConfig()
    switch = os.environ.get(ENV_SWITCH, "").strip().lower()
    if switch in ("auto", "on", "off") and switch != config.use:
        config = StaticDecodeConfig(switch, config.dtype, config.buckets, config.cuda_graphs, config.max_slots)
    return config


def static_decoder(model: Text2SemanticModel) -> StaticDecoder | None:
    """The decoder for one decoding call, or None for the dynamic path (``model.prefill``/``decode_step``).

    It stands in for both the model and the cache in :func:`studio.models.generate._decode`: it has the
    model's ``prefill``/``decode_step`` signatures (the cache argument is itself) and the cache's ``keep``."""
    config = decode_config(model)
    device = model.ar_predict_layer.weight.device
    if config.use == "off" or model.training or (config.use == "auto" and device.type != "cuda"):
        return None
    if getattr(model, "kv_dtype", None) == torch.int8:  # the CPU int8 step's quantized cache: its own path
        return None
    return StaticDecoder(model, _engine_for(model), config)


def bucket_for(n_positions: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket holding ``n_positions`` (beyond the largest: the largest, doubled until it fits)."""
    size = next((b for b in buckets if b >= n_positions), buckets[-1])
    while size < n_positions:
        size *= 2
    return size


def step_dtype(config: StaticDecodeConfig, model: Text2SemanticModel) -> torch.dtype:
    """The dtype a model's steps run in (see :class:`StaticDecodeConfig`). A precision mode chosen for the model
    (``model.precision``, set by ``studio.models.precision.convert_gpt``, an explicit fp32 included) wins."""
    chosen = getattr(model, "precision", None)
    weights = model.ar_predict_layer.weight
    if config.dtype != "auto":
        wanted = DTYPES[config.dtype]
        if chosen not in (None, "fp32") and wanted != weights.dtype:
            _LOGGER.warning("a %s-converted GPT steps in its own precision, not %s", chosen, config.dtype)
            return weights.dtype
        return wanted
    if weights.device.type != "cuda" or chosen is not None or weights.dtype != torch.float32:
        return weights.dtype
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ---------------------------------------------------------------------------------------------- the step


class _Slot:
    """One set of static buffers — a bucket of ``capacity`` columns for ``batch`` rows, steps in ``dtype`` — and
    the CUDA graph of the step over them (None until captured; never on CPU)."""

    def __init__(self, model: Text2SemanticModel, batch: int, capacity: int, dtype: torch.dtype, kv_dtype) -> None:
        cfg, device = model.config, model.ar_predict_layer.weight.device
        self.key = (batch, capacity, dtype)
        shape = (cfg.n_layer, batch, cfg.n_head, capacity, cfg.hidden_dim // cfg.n_head)
        self.k, self.v = (torch.zeros(shape, dtype=kv_dtype, device=device) for _ in "kv")  # (n_layer, B, H, L, Dh)
        self.blocked = torch.zeros(batch, capacity, dtype=torch.bool, device=device)  # (B, L) padding columns
        self.columns = torch.arange(capacity, device=device)  # (L,)
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)  # (B, 1) the new tokens
        self.position = torch.zeros(1, dtype=torch.long, device=device)  # their semantic position
        self.index = torch.zeros(1, dtype=torch.long, device=device)  # the cache column they are written to
        self.logits = torch.zeros(batch, cfg.vocab_size, device=device)  # (B, V) float32 output
        self.finite = torch.ones((), dtype=torch.bool, device=device)  # output: no NaN/inf in the logits
        with torch.inference_mode(False):  # grow the positional table now (a plain tensor), never inside a graph
            model.ar_audio_position.rows(0, capacity)
        self.table = model.ar_audio_position.table  # (≥ L, D); held, so a captured graph's rows stay alive
        self.graph: CudaGraphStep | None = None
        self.eager = device.type != "cuda"  # set too when graphs are off or a capture failed
        self.eager_steps = 0  # a slot is captured at its CAPTURE_AFTER-th step: short-lived shapes never are
        self.owner: weakref.ref | None = None

    batch = property(lambda self: self.key[0])
    capacity = property(lambda self: self.key[1])

    def free(self) -> bool:
        return self.owner is None or self.owner() is None

    def clear(self) -> None:
        self.k.zero_()
        self.v.zero_()
        self.blocked.zero_()


class _BucketCache:
    """What ``DecoderStack`` needs from a cache, over a slot: write one column at the device index, read the
    whole bucket (the mask hides what is not filled)."""

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.slot  # k, v (B, H, 1, Dh)
        s.k[layer].index_copy_(2, s.index, k.to(s.k.dtype))
        s.v[layer].index_copy_(2, s.index, v.to(s.v.dtype))
        return s.k[layer], s.v[layer]  # (B, H, L, Dh)

    def advance(self, n: int) -> None:  # the decoder keeps the length on the host
        return None


def run_step(model: Text2SemanticModel, slot: _Slot) -> None:
    """One decoding step over ``slot``'s buffers, every shape fixed: logits → ``slot.logits``."""
    x = model.ar_audio_embedding(slot.tokens)  # (B, 1, D)
    pe = slot.table.index_select(0, slot.position).to(x.dtype)  # (1, D), as SinePositionalEncoding adds it
    x = x + model.ar_audio_position.alpha * pe
    allowed = (slot.columns <= slot.index)[None, :] & ~slot.blocked  # (B, L)
    h = model.h(x, allowed[:, None, None, :], _BucketCache(slot))  # (B, 1, D)
    logits = model.ar_predict_layer(h[:, -1]).float()  # (B, V)
    slot.logits.copy_(logits)
    slot.finite.copy_(torch.isfinite(logits).all())


class CudaGraphStep:
    """A step captured as a CUDA graph: warm-up runs on a side stream (cuBLAS handles, workspaces), then one
    capture; :meth:`replay` reruns every kernel on the same buffers with one launch. Each graph has its own
    memory pool (a step's temporaries are a few MB), so graphs of different slots never share memory."""

    def __init__(self, step: Callable[[], None]) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                step()  # idempotent: the same column is rewritten with the same keys/values
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            step()

    def replay(self) -> None:
        self.graph.replay()


# ---------------------------------------------------------------------------------------------- per model


class _Engine:
    """What a model keeps between decoding calls: slots (buffers + graphs) and its 16-bit copies. Rebuilt when
    the model's parameters change (another object, storage or in-place update: see :func:`_fingerprint`)."""

    def __init__(self, fingerprint: tuple) -> None:
        self.fingerprint = fingerprint
        self.slots: list[_Slot] = []
        self.copies: dict[torch.dtype, Text2SemanticModel] = {}
        self.lock = threading.Lock()

    def model_in(self, model: Text2SemanticModel, dtype: torch.dtype) -> Text2SemanticModel:
        """``model`` itself when it already steps in ``dtype``, else its copy in ``dtype`` (made once)."""
        if dtype == model.ar_predict_layer.weight.dtype or getattr(model, "precision", "fp32") != "fp32":
            return model
        with self.lock:
            if dtype not in self.copies:
                with torch.inference_mode(False):  # plain parameters, whatever mode the caller is in
                    twin = copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
                twin.static_decode = StaticDecodeConfig(use="off")
                self.copies[dtype] = twin
            return self.copies[dtype]

    def acquire(self, owner: StaticDecoder, batch: int, capacity: int) -> _Slot:
        """A free slot of this shape and the owner's dtype (zeroed), made when none is free; free slots beyond
        ``max_slots`` go. The slot is the owner's until it frees it or is garbage-collected."""
        key = (batch, capacity, owner.dtype)
        with self.lock:
            slot = next((s for s in self.slots if s.key == key and s.free()), None)
            if slot is None:
                spare = [s for s in self.slots if s.free()]
                for old in spare[: max(0, len(self.slots) + 1 - owner.config.max_slots)]:
                    self.slots.remove(old)
                slot = _Slot(owner.model, batch, capacity, owner.dtype, owner.kv_dtype)
                slot.eager = slot.eager or not owner.config.cuda_graphs
                self.slots.append(slot)
            slot.owner = weakref.ref(owner)
        slot.clear()
        return slot

    def run(self, model: Text2SemanticModel, slot: _Slot) -> None:
        """The step over ``slot``: replayed from its graph on CUDA (captured once the slot has stepped
        ``CAPTURE_AFTER`` times: a batch that shrinks near its end does not pay a capture per size), else eager."""
        slot.eager_steps += slot.graph is None
        if slot.graph is None and not slot.eager and slot.eager_steps > CAPTURE_AFTER:
            try:
                with _CAPTURE_LOCK:  # one capture at a time per process (threads of a server)
                    slot.graph = CudaGraphStep(lambda: run_step(model, slot))
                _LOGGER.info("captured the GPT decoding step for %d row(s) × %d columns", slot.batch, slot.capacity)
            except Exception as exc:  # a capture failure costs speed, never the sentence
                _LOGGER.warning("CUDA graph capture failed (%s); this bucket's steps run eagerly", exc)
                slot.eager = True
        if slot.graph is not None:
            slot.graph.replay()
        else:
            run_step(model, slot)


_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()
_CAPTURE_LOCK = threading.Lock()


def _fingerprint(model: Text2SemanticModel) -> tuple:
    """Identity, storage and in-place version of every parameter and buffer (the positional tables aside: each
    slot holds its own), and the module structure: a graph reads weights by address; a 16-bit copy follows them."""
    tensors = [(n, t) for n, t in (*model.named_parameters(), *model.named_buffers()) if not n.endswith(".table")]
    marks = tuple((n, t.data_ptr(), 0 if t.is_inference() else t._version, t.dtype) for n, t in tensors)
    return marks + tuple(map(id, model.modules()))


def _engine_for(model: Text2SemanticModel) -> _Engine:
    mark = _fingerprint(model)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(model)
        if engine is None or engine.fingerprint != mark:
            engine = _Engine(mark)
            _ENGINES[model] = engine
        return engine


# ---------------------------------------------------------------------------------------------- the decoder


class StaticDecoder:
    """One decoding call's state over the model's static slots; :func:`static_decoder` makes it.

    ``prefill`` runs the model's own (dynamic, fp32) prefill and copies the cache into a slot; ``decode_step``
    fills the slot's input tensors and runs (or replays) the step; ``keep`` drops rows (finished sentences).
    The length stays on the host; the device never reports back except for the 16-bit NaN check.
    """

    def __init__(self, model: Text2SemanticModel, engine: _Engine, config: StaticDecodeConfig) -> None:
        self.model, self.engine, self.config = model, engine, config
        self.dtype = step_dtype(config, model)
        self.kv_dtype = getattr(model, "kv_dtype", None) or self.dtype
        self.fell_back = False  # True once a 16-bit step gave NaN/inf and the sequence went on in fp32
        self.slot: _Slot | None = None
        self.length = self.n_text = 0  # cache columns filled (text + semantic positions); text columns
        self._redo: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None  # 16-bit: prefill inputs
        self._fed: list[torch.Tensor] = []  # 16-bit: every token fed since (an fp32 redo needs them)

    @torch.inference_mode()
    def prefill(
        self,
        text_emb: torch.Tensor,
        prompt: torch.Tensor | None,
        cache: object = None,
        *,
        text_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As :meth:`Text2SemanticModel.prefill` (fp32, dynamic), then the cache moves into a slot. → (B, V)"""
        B, n_text = text_emb.shape[:2]
        if prompt is None:
            prompt = torch.zeros(B, 0, dtype=torch.long, device=text_emb.device)
        dynamic = KVCache.for_model(self.model, B, n_text + prompt.shape[1])
        logits = self.model.prefill(text_emb, prompt, dynamic, text_padding=text_padding)
        self.n_text = n_text
        if self.dtype != torch.float32 and self.model.ar_predict_layer.weight.dtype == torch.float32:
            self._redo, self._fed = (text_emb, prompt, text_padding), []
        self._load(dynamic)
        return logits

    @torch.inference_mode()
    def decode_step(self, tokens: torch.Tensor, position: int, cache: object = None) -> torch.Tensor:
        """tokens (B, 1) at semantic position ``position`` → logits (B, V) float32, as ``model.decode_step``."""
        column = self.n_text + position
        if column != self.length:
            raise ValueError(f"decode_step at column {column}, but {self.length} columns are filled")
        slot = self.slot
        if column >= slot.capacity:
            slot = self._move(slot.batch, bucket_for(column + 1, self.config.buckets))
        slot.tokens.copy_(tokens)
        slot.position.fill_(position)
        slot.index.fill_(column)
        self.engine.run(self.engine.model_in(self.model, self.dtype), slot)
        self.length += 1
        if self._redo is not None:
            self._fed.append(tokens.detach().clone())
            if not bool(slot.finite):
                return self._redo_in_fp32(position)
        return slot.logits.clone()

    @torch.inference_mode()
    def keep(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (as :meth:`KVCache.keep`): they move to a slot of the new batch size."""
        indices = indices.to(self.slot.k.device)
        self._move(len(indices), self.slot.capacity, indices)
        if self._redo is not None:
            text_emb, prompt, padding = self._redo
            fed = torch.cat([prompt, *self._fed], dim=1)  # (B, P + steps): the prompt of a redo from here on
            kept = (None if t is None else t.index_select(0, indices) for t in (text_emb, fed, padding))
            self._redo, self._fed = tuple(kept), []

    def _load(self, cache: KVCache) -> None:
        """Take the keys, values and padding map of a dynamic cache (its ``length`` columns) into a new slot."""
        old, n = self.slot, cache.length
        self.slot = self.engine.acquire(self, cache.batch_size, bucket_for(n + 1, self.config.buckets))
        self.slot.k[:, :, :, :n].copy_(cache.k[:, :, :, :n])
        self.slot.v[:, :, :, :n].copy_(cache.v[:, :, :, :n])
        self.slot.blocked[:, :n].copy_(cache.blocked[:, :n])
        self.length = n
        if old is not None:
            old.owner = None

    def _move(self, batch: int, capacity: int, rows: torch.Tensor | None = None) -> _Slot:
        """Copy the filled columns (of ``rows``) into a slot of another bucket or batch size; the old one is freed."""
        old, n = self.slot, self.length
        new = self.engine.acquire(self, batch, capacity)
        for src, dst in ((old.k, new.k), (old.v, new.v)):
            part = src[:, :, :, :n]
            dst[:, :, :, :n].copy_(part if rows is None else part.index_select(1, rows))
        blocked = old.blocked[:, :n]
        new.blocked[:, :n].copy_(blocked if rows is None else blocked.index_select(0, rows))
        old.owner = None
        self.slot = new
        return new

    def _redo_in_fp32(self, position: int) -> torch.Tensor:
        """A 16-bit step gave NaN/inf: prefill [text ; prompt ; every token fed] again in fp32 — the logits of
        this step as the fp32 path computes them — and decode the rest of the sequence in fp32."""
        text_emb, prompt, padding = self._redo
        semantic = torch.cat([prompt, *self._fed], dim=1)  # (B, P + steps)
        _LOGGER.warning("%s decoding step %d gave NaN/inf; continuing this sentence in fp32", self.dtype, position)
        self.dtype, self.kv_dtype = torch.float32, getattr(self.model, "kv_dtype", None) or torch.float32
        self._redo, self._fed, self.fell_back = None, [], True
        dynamic = KVCache.for_model(self.model, text_emb.shape[0], text_emb.shape[1] + semantic.shape[1])
        logits = self.model.prefill(text_emb, semantic, dynamic, text_padding=padding)
        self._load(dynamic)
        return logits
