"""Fine-tuning pieces in-process with the tiny models: losses fall, runs repeat with a seed, small data is
refused, events and checkpoints survive interruptions, discriminator weights load under legacy names."""

from __future__ import annotations

import pytest
import torch
from conftest import build_voice_workspace, tiny_pretrained_assets

from studio.errors import DatasetError, TrainingError
from studio.pretrained import PretrainedAssets
from studio.training.events import EventWriter, read_event_page
from studio.training.run_layout import RunConfig


@pytest.fixture(scope="module")
def setup(tmp_path_factory, golden, voices, tiny_s2_pth):
    from studio.training.datasets import load_utterances
    from studio.training.features import extract_features

    base = tmp_path_factory.mktemp("train_units")
    pretrained = tiny_pretrained_assets(base / "pretrained", golden, tiny_s2_pth)
    ws_root = build_voice_workspace(base / "ws", voices, "joe", n_clips=4)
    cfg = RunConfig(name="joe", workspace_root=str(ws_root), pretrained_root=str(pretrained.root), run_id="unit")
    features = extract_features(cfg.workspace, pretrained)
    return cfg, pretrained, features, load_utterances(features)


def test_features_are_cached_and_redone_when_the_input_changes(setup, tmp_path):
    from studio.training.features import extract_features

    cfg, pretrained, features, utts = setup
    assert features.computed == 4 and [u.semantic.numel() > 0 for u in utts] == [True] * 4
    again = extract_features(cfg.workspace, pretrained)
    assert (again.reused, again.computed) == (4, 0)
    lines = cfg.workspace.dataset_list.read_text(encoding="utf-8").splitlines()
    changed = lines[0].rsplit("|", 1)[0] + "|A different sentence for the first clip."
    cfg.workspace.dataset_list.write_text("\n".join([changed, *lines[1:]]) + "\n", encoding="utf-8")
    try:
        redo = extract_features(cfg.workspace, pretrained)
        assert (redo.reused, redo.computed) == (3, 1)
    finally:
        cfg.workspace.dataset_list.write_text("\n".join(lines) + "\n", encoding="utf-8")
        extract_features(cfg.workspace, pretrained)


def test_the_pronunciation_list_redoes_only_the_clips_it_changes(setup):
    from safetensors.torch import load_file

    from studio.text.user_lexicon import parse_lexicon
    from studio.training.features import extract_features

    cfg, pretrained, features, _ = setup
    word = features.items[0].text.split()[1].strip(",.")  # a word of the first transcript only
    assert all(word.lower() not in item.text.lower().split() for item in features.items[1:])
    lexicon = parse_lexicon(f"en | {word} | HH EH1 L OW0")
    before = load_file(cfg.workspace.features_dir / features.items[0].file)["phone_ids"]
    try:
        redo = extract_features(cfg.workspace, pretrained, lexicon=lexicon)
        assert (redo.reused, redo.computed) == (3, 1)
        after = load_file(cfg.workspace.features_dir / redo.items[0].file)["phone_ids"]
        assert after.tolist() != before.tolist()
    finally:
        extract_features(cfg.workspace, pretrained)  # back to the plain readings for the other tests


def _gpt(cfg, pretrained, utts, **overrides):
    from dataclasses import replace

    from studio.training.gpt_trainer import GPTTrainer

    torch.manual_seed(cfg.seed)
    c = replace(cfg, gpt_epochs=100, gpt_batch_size=4, gpt_lr=5e-3, warmup_steps=0, lora_rank=8, **overrides)
    return GPTTrainer(c, pretrained.gpt_path, utts, torch.device("cpu"))


def test_gpt_loss_falls_and_a_seed_repeats_the_run(setup):
    cfg, pretrained, _, utts = setup
    trainer = _gpt(cfg, pretrained, utts)
    losses = [trainer.train_step([0, 1, 2, 3])["loss"] for _ in range(25)]
    assert sum(losses[-5:]) / 5 < 0.93 * sum(losses[:5]) / 5, losses
    again = _gpt(cfg, pretrained, utts)
    assert [again.train_step([0, 1, 2, 3])["loss"] for _ in range(3)] == losses[:3]


def test_sovits_loss_falls(setup):
    from dataclasses import replace

    from studio.training.sovits_trainer import SoVITSTrainer

    cfg, pretrained, _, utts = setup
    torch.manual_seed(0)
    short = min(range(len(utts)), key=lambda i: utts[i].seconds)
    c = replace(cfg, sovits_lr=2e-3, lora_rank=None)
    trainer = SoVITSTrainer(c, pretrained.sovits_path, None, [utts[short]], torch.device("cpu"))
    mel = [trainer.train_step([0])["mel"] for _ in range(6)]
    assert sum(mel[-2:]) / 2 < 0.9 * sum(mel[:2]) / 2, mel


def test_presets_refuse_less_than_20_seconds():
    from studio.training.presets import choose_plan

    with pytest.raises(DatasetError, match="at least 20 s"):
        choose_plan("balanced", 12.5, 3)
    plan = choose_plan("fast", 60.0, 12).with_overrides(gpt_epochs=3, sovits_lr=None)
    assert plan.gpt_epochs == 3 and plan.gpt_batch_size <= 6
    assert choose_plan("best", 60.0, 12).gpt_epochs > choose_plan("fast", 60.0, 12).gpt_epochs


def test_service_refuses_small_data_and_missing_base_models(tmp_path, golden, voices, tiny_s2_pth):
    from studio.services.training import TrainingService

    pretrained = tiny_pretrained_assets(tmp_path / "pre", golden, tiny_s2_pth)
    ws = build_voice_workspace(tmp_path / "ws", voices, "small", n_clips=2)  # about 9 s
    with pytest.raises(TrainingError, match="20 s"):
        TrainingService(ws, pretrained).start("small")
    build_voice_workspace(ws, voices, "big")
    with pytest.raises(TrainingError, match="missing"):
        TrainingService(ws, PretrainedAssets(tmp_path / "nothing")).start("big")


def test_event_reader_skips_a_half_written_line(tmp_path):
    path = tmp_path / "events.jsonl"
    emit = EventWriter(path)
    emit("start", message="x")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"kind": "step", "st')  # killed mid-write
    page = read_event_page(path)
    assert [e.kind for e in page.events] == ["start"] and page.next_since == 1
    EventWriter(path)("done")  # a restarted job repairs the tail
    page = read_event_page(path, page.next_since)
    assert [e.kind for e in page.events] == ["done"]


def test_checkpoint_round_trip_restores_weights_and_rng(tmp_path):
    from studio.training.checkpoints import StageState, load_checkpoint, restore, save_checkpoint

    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters())
    lin(torch.ones(3)).sum().backward()
    opt.step()
    torch.manual_seed(5)
    save_checkpoint(tmp_path / "c.pt", StageState(1, 2, 7), lin.state_dict(), {"o": opt}, {})
    expected = torch.rand(3)
    other = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(other.parameters())
    state = restore(load_checkpoint(tmp_path / "c.pt"), other.load_state_dict, {"o": opt2}, {})
    assert (state.epoch, state.batch, state.step) == (1, 2, 7)
    assert torch.equal(torch.rand(3), expected) and torch.equal(other.weight, lin.weight)
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(TrainingError, match="cannot be read"):
        load_checkpoint(tmp_path / "bad.pt")


def test_discriminator_loads_legacy_weight_norm_names():
    from studio.models.sovits.discriminators import MultiPeriodDiscriminator, load_discriminator_state

    src = MultiPeriodDiscriminator(width=0.0625)
    legacy = {}
    for k, v in src.state_dict().items():
        k = k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        )
        legacy[k] = v
    dst = MultiPeriodDiscriminator(width=0.0625)
    assert load_discriminator_state(dst, legacy) == []
    wav = torch.randn(1, 1, 4000)
    assert torch.equal(src(wav, wav)[0][1], dst(wav, wav)[0][1])
    assert load_discriminator_state(MultiPeriodDiscriminator(width=0.125), legacy)  # wrong shapes are reported
