"""The Chinese BERT (chinese-roberta-wwm-ext-large) as plain PyTorch, read from its Hugging Face folder.

Only the encoder that the GPT's features need: embeddings and the transformer layers, post-norm, exact (erf)
GELU, no pooler and no masked-LM head. Module and parameter names equal the Hugging Face ``BertModel`` names
(``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight``, …), so a released
``pytorch_model.bin``/``model.safetensors`` loads by stripping its ``bert.`` prefix. Why not ``transformers``:
importing its BERT modelling code alone costs ~210 MB of resident memory (measured), more than a quarter of an
int8 BERT, for a network this small. The tokenizer is the ``tokenizers`` package's, from the folder's
``tokenizer.json`` (or its ``vocab.txt``), as ``BertTokenizerFast`` uses it.

Legend: ``S`` tokens, ``H`` hidden size, ``A`` attention heads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.hf_checkpoint import assign_checked, open_tensors
from studio.models.meta_init import embedding


@dataclass(frozen=True)
class BertSizes:
    """What ``config.json`` says about the encoder (the fields a BERT feature extractor uses)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str

    @classmethod
    def from_folder(cls, folder: Path) -> BertSizes:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        sizes = cls(
            vocab_size=int(config["vocab_size"]),
            hidden_size=int(config["hidden_size"]),
            num_hidden_layers=int(config["num_hidden_layers"]),
            num_attention_heads=int(config["num_attention_heads"]),
            intermediate_size=int(config["intermediate_size"]),
            max_position_embeddings=int(config.get("max_position_embeddings", 512)),
            type_vocab_size=int(config.get("type_vocab_size", 2)),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            hidden_act=str(config.get("hidden_act", "gelu")),
        )
        if sizes.hidden_act != "gelu":
            raise ValueError(f"hidden_act {sizes.hidden_act!r} is not supported (the Chinese BERT uses 'gelu')")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return sizes


class _Embeddings(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.word_embeddings = embedding(s.vocab_size, s.hidden_size)
        self.position_embeddings = embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type_embeddings = embedding(s.type_vocab_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(positions))


class _SelfAttention(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.heads = s.num_attention_heads
        self.query = nn.Linear(s.hidden_size, s.hidden_size)
        self.key = nn.Linear(s.hidden_size, s.hidden_size)
        self.value = nn.Linear(s.hidden_size, s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, S, H = x.shape
        q, k, v = (
            proj(x).view(B, S, self.heads, H // self.heads).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(H // self.heads)  # (B, A, S, S)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)  # (B, A, S, H/A)
        return out.transpose(1, 2).reshape(B, S, H)


class _ResidualNorm(nn.Module):
    """LayerNorm(x + dense(h)) — Hugging Face's ``BertSelfOutput`` / ``BertOutput``."""

    def __init__(self, d_in: int, s: BertSizes) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + x)


class _Attention(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.self = _SelfAttention(s)
        self.output = _ResidualNorm(s.hidden_size, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x), x)


class _Intermediate(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, as "gelu" in the config


class _Layer(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.attention = _Attention(s)
        self.intermediate = _Intermediate(s)
        self.output = _ResidualNorm(s.intermediate_size, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, s: BertSizes) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(s) for _ in range(s.num_hidden_layers))


class BertEncoder(nn.Module):
    """Embeddings + layers; :meth:`hidden_states` gives the embeddings' output and every layer's."""

    def __init__(self, sizes: BertSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.embeddings = _Embeddings(sizes)
        self.encoder = _Encoder(sizes)

    def hidden_states(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None, up_to: int | None = None
    ) -> list[torch.Tensor]:
        """[embeddings (B, S, H), layer 1 output, …]; ``up_to``: stop after that many layers."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        states = [x]
        for layer in self.encoder.layer[:up_to]:
            x = layer(x)
            states.append(x)
        return states


def _checkpoint_state(weight_file: Path) -> dict[str, torch.Tensor]:
    """The encoder's tensors from a Hugging Face checkpoint, ``bert.`` prefix stripped, old ``gamma``/``beta``
    LayerNorm names renamed; the pooler, the masked-LM head and ``position_ids`` are left out."""
    state = {}
    for name, tensor in open_tensors(weight_file).items():
        name = name.removeprefix("bert.")
        if not name.startswith(("embeddings.", "encoder.")) or name.endswith("position_ids"):
            continue
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        state[name] = tensor
    return state


def load_bert_encoder(folder: Path, weight_file: Path) -> tuple[BertEncoder, list[str]]:
    """(the encoder in fp32 eval mode, problems): problems name missing or misshapen weights (empty: fine).

    The encoder is built on the meta device and takes the checkpoint's tensors as they are (no random
    initialisation, no copy: a ``pytorch_model.bin`` stays memory-mapped)."""
    with torch.device("meta"):
        model = BertEncoder(BertSizes.from_folder(folder))
    problems = assign_checked(model, _checkpoint_state(weight_file))
    return model.eval(), problems


class BertTokenizer:
    """The folder's tokenizer (``tokenizers``): ``encode(text)`` → ids, token types, attention mask."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        if (folder / "tokenizer.json").is_file():
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        else:
            from tokenizers.implementations import BertWordPieceTokenizer

            settings = {}
            if (folder / "tokenizer_config.json").is_file():
                settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            lowercase = bool(settings.get("do_lower_case", True))
            self._tok = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=lowercase)
        self._tok.no_padding()
        self._tok.no_truncation()

    def __call__(self, text: str) -> dict[str, torch.Tensor]:
        encoded = self._tok.encode(text)
        return {
            "input_ids": torch.tensor([encoded.ids], dtype=torch.long),
            "token_type_ids": torch.tensor([encoded.type_ids], dtype=torch.long),
            "attention_mask": torch.tensor([encoded.attention_mask], dtype=torch.long),
        }

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(i) for i in ids]
