"""LoRA as a model transformation: merged == unmerged, adapter-only weights, frozen bases, exact key restoration."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import spec_dir
from torch import nn
from torch.nn.utils import parametrizations, weight_norm

from studio.errors import CheckpointError
from studio.models.lora import (
    GPT_DEFAULT_TARGETS,
    SOVITS_DECODER_TARGETS,
    SOVITS_DEFAULT_TARGETS,
    LoRAConfig,
    LoRATargets,
    add_lora,
    load_lora_state_dict,
    lora_parameters,
    lora_state_dict,
    mark_only_lora_trainable,
    merge_lora,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")

KEY_TABLES = spec_dir() / "state_dict_keys"


# ----------------------------------------------------------------------------------------------- synthetic models


class ConvNet(nn.Module):
    """Plain, legacy weight-normed, parametrised weight-normed, reflect-padded and grouped convs + a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.plain = nn.Conv1d(4, 8, 3, padding=1)
        self.wn_legacy = weight_norm(nn.Conv1d(8, 8, 5, padding=4, dilation=2))
        self.wn_param = parametrizations.weight_norm(nn.Conv1d(8, 8, 1))
        self.reflect = nn.Conv1d(8, 8, 3, padding=1, padding_mode="reflect", bias=False)
        self.grouped = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 4, T) -> (B, T, 3)
        x = torch.tanh(self.plain(x))
        x = torch.tanh(self.wn_legacy(x))
        x = self.reflect(self.grouped(self.wn_param(x)))
        return self.head(x.transpose(1, 2))


class TinyGPTStack(nn.Module):
    """Post-norm transformer layers with a packed in_proj, named like the GPT's ``h.layers.N``."""

    def __init__(self, dim: int = 16, n_layers: int = 2) -> None:
        super().__init__()
        self.h = nn.Module()
        self.h.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, 2, 4 * dim, dropout=0.0, batch_first=True) for _ in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        mask = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), diagonal=1)
        for layer in self.h.layers:
            x = layer(x, src_mask=mask)
        return x


CONV_TARGETS = LoRATargets(modules=("plain", "wn_*", "reflect", "grouped", "head"))


def _randomise_adapters(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize(
    "make, targets, make_input",
    [
        (ConvNet, CONV_TARGETS, lambda: torch.randn(2, 4, 23)),
        (TinyGPTStack, GPT_DEFAULT_TARGETS, lambda: torch.randn(2, 7, 16)),
    ],
    ids=["conv", "gpt"],
)
def test_merged_output_equals_unmerged(make, targets, make_input) -> None:
    torch.manual_seed(0)
    model = make().eval()
    x = make_input()
    with torch.no_grad():
        before = model(x)
    add_lora(model, LoRAConfig(rank=3, alpha=6.0, targets=targets))
    with torch.no_grad():
        assert _rel(model(x), before) < 1e-7  # B starts at zero: a fresh adapter is a no-op
    _randomise_adapters(model)
    with torch.no_grad():
        unmerged = model(x)
    merge_lora(model)
    with torch.no_grad():
        merged = model(x)
    assert _rel(unmerged, before) > 1e-2  # the adapters really changed the function
    assert _rel(merged, unmerged) < 1e-6


def test_merge_restores_exact_keys_types_and_flags() -> None:
    torch.manual_seed(0)
    for model, targets in ((ConvNet(), CONV_TARGETS), (TinyGPTStack(), GPT_DEFAULT_TARGETS)):
        model.head.requires_grad_(False) if isinstance(model, ConvNet) else None
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        types = {n: type(m) for n, m in model.named_modules()}
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        add_lora(model, LoRAConfig(rank=2, targets=targets))
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} != shapes
        merge_lora(model)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
        assert {n: type(m) for n, m in model.named_modules()} == types
        assert {n: p.requires_grad for n, p in model.named_parameters()} == flags


def test_weight_norm_merge_keeps_g_and_v() -> None:
    torch.manual_seed(0)
    model = ConvNet()
    add_lora(model, LoRAConfig(rank=2, targets=CONV_TARGETS))
    _randomise_adapters(model)
    merge_lora(model)
    sd = model.state_dict()
    for g_key, v_key in (
        ("wn_legacy.weight_g", "wn_legacy.weight_v"),
        ("wn_param.parametrizations.weight.original0", "wn_param.parametrizations.weight.original1"),
    ):
        v = sd[v_key]
        assert torch.allclose(sd[g_key], v.norm(dim=(1, 2), keepdim=True), rtol=1e-6)


def test_grouped_conv_is_skipped_and_names_are_canonical() -> None:
    names = add_lora(ConvNet(), LoRAConfig(rank=2, targets=CONV_TARGETS))
    assert names == ["head", "plain", "reflect", "wn_legacy", "wn_param"]
    gpt_names = add_lora(TinyGPTStack(n_layers=1), LoRAConfig(rank=2, targets=GPT_DEFAULT_TARGETS))
    assert gpt_names == [
        "h.layers.0.linear1",
        "h.layers.0.linear2",
        "h.layers.0.self_attn.in_proj_weight",
        "h.layers.0.self_attn.out_proj",
    ]


def test_no_match_and_double_application_are_refused() -> None:
    with pytest.raises(ValueError, match="no layer"):
        add_lora(ConvNet(), LoRAConfig(targets=LoRATargets(modules=("does_not_exist",))))
    model = TinyGPTStack()
    add_lora(model, LoRAConfig(rank=2, targets=GPT_DEFAULT_TARGETS))
    with pytest.raises(ValueError, match="no layer"):
        add_lora(model, LoRAConfig(rank=2, targets=GPT_DEFAULT_TARGETS))


def test_only_adapters_train_and_base_weights_stay_untouched() -> None:
    torch.manual_seed(0)
    model = TinyGPTStack()
    add_lora(model, LoRAConfig(rank=4, targets=GPT_DEFAULT_TARGETS))
    n_trainable = mark_only_lora_trainable(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert n_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    b_before = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("lora_B")}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(2, 5, 16)).pow(2).mean().backward()
        opt.step()
    for n, p in model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n
            assert p.grad is None, n
    assert any(not torch.equal(p, b_before[n]) for n, p in model.named_parameters() if n in b_before)


def test_adapter_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    base = TinyGPTStack()
    trained, fresh = copy.deepcopy(base), copy.deepcopy(base)
    config = LoRAConfig(rank=3, alpha=3.0, targets=GPT_DEFAULT_TARGETS)
    add_lora(trained, config)
    _randomise_adapters(trained)
    sd = {k: v.clone() for k, v in lora_state_dict(trained).items()}
    assert "h.layers.0.self_attn.in_proj_weight.lora_A" in sd and "h.layers.1.linear2.lora_B" in sd
    assert all(k.endswith((".lora_A", ".lora_B")) for k in sd)

    add_lora(fresh, LoRAConfig.from_dict(json.loads(json.dumps(config.to_dict()))))
    load_lora_state_dict(fresh, sd)
    x = torch.randn(1, 6, 16)
    with torch.no_grad():
        assert torch.equal(trained.eval()(x), fresh.eval()(x))

    other_rank = copy.deepcopy(base)
    add_lora(other_rank, LoRAConfig(rank=2, targets=GPT_DEFAULT_TARGETS))
    with pytest.raises(CheckpointError, match="shape"):
        load_lora_state_dict(other_rank, sd)
    with pytest.raises(CheckpointError, match="missing"):
        load_lora_state_dict(fresh, {k: v for k, v in sd.items() if "linear1" not in k})


# ----------------------------------------------------------------------------------------------- official layouts


def _read_key_table(name: str) -> dict[str, list[int]]:
    path = KEY_TABLES / name
    if not path.is_file():
        pytest.fail(f"key table not found: {path}")
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
    return {r[0]: json.loads(r[1]) for r in rows}


def _make_layer(params: dict[str, list[int]]) -> nn.Module:
    """A real layer with exactly these parameter names and shapes (the head count does not show in keys)."""
    names = set(params)
    if "in_proj_weight" in names:
        return nn.MultiheadAttention(params["in_proj_weight"][1], 1)
    for w in ("weight_v", "weight"):
        shape = params.get(w)
        if shape and len(shape) in (2, 3) and names <= {w, "weight_g", "bias"}:
            bias = "bias" in names
            if len(shape) == 2:
                layer = nn.Linear(shape[1], shape[0], bias)
            elif bias and params["bias"] == [shape[1]] != [shape[0]]:  # transposed conv: weight (C_in, C_out, k)
                layer = nn.ConvTranspose1d(shape[0], shape[1], shape[2])
            else:
                layer = nn.Conv1d(shape[1], shape[0], shape[2], bias=bias)
            return weight_norm(layer) if w == "weight_v" else layer
    holder = nn.Module()
    for pname, shape in params.items():
        holder.register_parameter(pname, nn.Parameter(torch.zeros(shape)))
    return holder


def _skeleton(table: dict[str, list[int]]) -> nn.Module:
    """A module tree whose state dict has exactly the keys and shapes of an official key table."""
    groups: dict[str, dict[str, list[int]]] = {}
    for key, shape in table.items():
        prefix, _, pname = key.rpartition(".")
        groups.setdefault(prefix, {})[pname] = shape
    root = nn.Module()
    for prefix, params in groups.items():
        if any(isinstance(m, nn.MultiheadAttention) for m in _ancestors(root, prefix)):
            continue  # out_proj of a MultiheadAttention already exists
        parent = root
        *path, leaf = prefix.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, _make_layer(params))
    return root


def _ancestors(root: nn.Module, prefix: str) -> list[nn.Module]:
    found, node = [], root
    for part in prefix.split(".")[:-1]:
        if not hasattr(node, part):
            break
        node = getattr(node, part)
        found.append(node)
    return found


@pytest.mark.parametrize(
    "table, targets, must_hit, must_miss",
    [
        ("s1_tiny_state_dict.tsv", GPT_DEFAULT_TARGETS, ("in_proj_weight", "out_proj", "linear1", "linear2"), ()),
        (
            "s2_tiny_state_dict.tsv",
            SOVITS_DEFAULT_TARGETS,
            ("enc_p.encoder_ssl.", "enc_p.encoder_text.", "enc_p.encoder2.", "enc_p.mrte.", "flow.flows."),
            ("ssl_proj", "quantizer", "enc_q", "dec.", "ref_enc"),
        ),
    ],
    ids=["gpt", "sovits"],
)
def test_presets_on_official_layouts_merge_back_to_the_key_table(table, targets, must_hit, must_miss) -> None:
    keys = _read_key_table(table)
    model = _skeleton(keys)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    names = add_lora(model, LoRAConfig(rank=2, targets=targets))
    for part in must_hit:
        assert any(part in n for n in names), part
    for part in must_miss:
        assert not any(n.startswith(part) for n in names), part
    if table.startswith("s1"):  # every layer gets all four projections
        n_layers = sum(k.endswith("in_proj_weight") for k in keys)
        assert len(names) == 4 * n_layers
    _randomise_adapters(model)
    before = _snapshot(model)
    merge_lora(model)
    after = model.state_dict()
    assert {k: list(v.shape) for k, v in after.items()} == keys
    changed = {k for k in keys if k in before and not torch.equal(before[k], after[k])}
    assert all(any(k.startswith(n) for n in names) for k in changed)


# ----------------------------------------------------------------------------------------------- the real models


def _assert_merge_is_invisible(model: nn.Module, targets: LoRATargets, run) -> None:
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = run(model)
    add_lora(model, LoRAConfig(rank=2, alpha=4.0, targets=targets))
    _randomise_adapters(model)
    with torch.no_grad():
        unmerged = run(model)
    merge_lora(model)
    with torch.no_grad():
        merged = run(model)
    assert _rel(unmerged, before) > 1e-2
    assert _rel(merged, unmerged) < 1e-6
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes


def test_gpt_preset_on_the_text2semantic_model() -> None:
    from studio.models.text2semantic import Text2SemanticModel

    torch.manual_seed(0)
    model = Text2SemanticModel.from_name("tiny").eval()
    cfg = model.config
    phones, bert = torch.randint(0, cfg.phoneme_vocab_size, (2, 7)), torch.randn(2, cfg.bert_dim, 7)
    semantic = torch.randint(0, cfg.vocab_size - 1, (2, 5))
    _assert_merge_is_invisible(model, GPT_DEFAULT_TARGETS, lambda m: m(phones, bert, semantic))


def test_sovits_presets_on_the_synthesizer() -> None:
    from studio.models.sovits.config import SoVITSConfig
    from studio.models.sovits.synthesizer import SoVITSSynthesizer

    small = dict(inter_channels=8, hidden_channels=16, filter_channels=32, n_layers=2, mrte_hidden_channels=32)
    small |= dict(gin_channels=32, ssl_dim=32, codebook_size=16, upsample_initial_channel=32, style_hidden=16)
    small |= dict(filter_length=128, win_length=128, ref_enc_in_bins=64, posterior_n_layers=2)
    config = SoVITSConfig(**small)
    torch.manual_seed(0)
    model = SoVITSSynthesizer(config).eval()
    codes, phones = torch.randint(0, config.codebook_size, (1, 1, 4)), torch.randint(0, 100, (1, 5))
    spec = torch.rand(1, config.spec_channels, 12)
    targets = SOVITS_DEFAULT_TARGETS.union(SOVITS_DECODER_TARGETS)
    _assert_merge_is_invisible(model, targets, lambda m: m.decode(codes, phones, spec, noise_scale=0.0))
