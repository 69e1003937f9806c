"""Choosing the epoch by listening: the rule on constructed scores, and once the real pipeline on a tiny run
(train two epochs per stage → every epoch speaks held-out sentences → Whisper CER + speaker similarity →
epochs.json, reused on the next call; "add to my voices" takes the recommended epoch unless told another)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.services.epoch_choice import (
    CER_TOLERANCE,
    EpochReport,
    EpochScore,
    format_table,
    load_report,
    pair_epochs,
    recommend,
    save_report,
)


def _score(n: int, cer: float | None, sim: float | None) -> EpochScore:
    return EpochScore(n, n, n, cer=cer, similarity=sim)


def test_clearly_worse_reading_loses_even_with_a_closer_voice():
    scores = [_score(1, 0.20, 0.70), _score(2, 0.04, 0.80), _score(3, 0.06, 0.84), _score(4, 0.30, 0.90)]
    number, reason = recommend(scores)
    assert number == 3  # within the tolerance of the best CER (0.04) and the most similar of those
    assert reason.codes == ["closest", "overtrained"] and reason.params["later"] == "4"
    assert "epoch 4: 30%" in reason.english()
    assert max(scores, key=lambda s: s.score).number == 3  # the printed score ranks as the rule does


def test_similarity_decides_within_the_tolerance_and_missing_measures_fall_back():
    close = [_score(1, 0.10, 0.81), _score(2, 0.10 + CER_TOLERANCE / 2, 0.86)]
    assert recommend(close)[0] == 2
    no_asr = [_score(1, None, 0.9), _score(2, None, 0.7)]
    assert recommend(no_asr) == (1, recommend(no_asr)[1]) and recommend(no_asr)[1].codes == ["closest_no_cer"]
    no_sim = [_score(1, 0.5, None), _score(2, 0.1, None)]
    assert recommend(no_sim)[0] == 2 and recommend(no_sim)[1].codes == ["clearest"]
    nothing = [_score(1, None, None), _score(2, None, None)]
    assert recommend(nothing)[0] == 2 and recommend(nothing)[1].codes == ["unscored"]


def test_stages_are_paired_by_their_share_of_training(tmp_path):
    gpt = {e: tmp_path / f"g{e}" for e in range(1, 9)}
    sovits = {e: tmp_path / f"s{e}" for e in range(1, 5)}
    pairs = [(c.number, c.gpt_epoch, c.sovits_epoch) for c in pair_epochs(gpt, sovits)]
    assert pairs[0] == (1, 1, 1) and pairs[-1] == (8, 8, 4) and len(pairs) == 8
    assert all(s == -(-2 * g // 4) and s <= 4 for _, g, s in pairs)  # SoVITS epoch = ceil(GPT epoch / 2)
    only_gpt = pair_epochs(gpt, None)
    assert [c.sovits_epoch for c in only_gpt] == [None] * 8
    capped = pair_epochs({e: tmp_path for e in range(1, 21)}, None, limit=5)
    assert [c.number for c in capped][0] == 1 and capped[-1].number == 20 and len(capped) == 5


def test_report_table_marks_the_recommended_epoch(tmp_path):
    report = EpochReport("r1", "en", ["A sentence."], "resemblyzer", 1, [_score(1, 0.2, 0.7), _score(2, 0.05, 0.8)])
    report.recommended, report.reason = recommend(report.scores)
    save_report(tmp_path, report)
    again = load_report(tmp_path)
    assert again is not None and again.recommended == 2 and again.reason.codes == report.reason.codes
    lines = format_table(again).splitlines()
    assert "similarity" in lines[0] and lines[2].startswith("★")
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    assert "5.0%" in lines[2] and "0.800" in lines[2]


# ----------------------------------------------------------------------------------------- the real pipeline


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, golden, voices, tiny_s2_pth):
    """A tiny run of two epochs per stage (scored by the tests themselves: one held-out sentence, to be quick;
    the job's own scoring stage is exercised by the command-line journey)."""
    from conftest import build_voice_workspace, tiny_pretrained_assets

    from studio.services.training import TrainingOptions, TrainingService

    tmp = tmp_path_factory.mktemp("epochs")
    pretrained = tiny_pretrained_assets(tmp / "pre", golden, tiny_s2_pth)
    ws = build_voice_workspace(tmp / "ws", voices, "joe", n_clips=5)
    service = TrainingService(ws, pretrained, device="cpu")
    options = TrainingOptions(
        epochs=2, batch_size=4, lora_rank=4, sample_max_tokens=30, checkpoint_every=0, epoch_choice=False
    )
    run_id = service.start("joe", options)
    status = service.wait(run_id, timeout=900)
    run_dir = service.run_dir(run_id)
    assert status.state == "done", (run_dir / "job.log").read_text()[-3000:]
    return service, pretrained, ws, run_id, run_dir


@pytest.mark.slow
def test_every_epoch_is_scored_after_training_and_the_report_is_reused(trained_run):
    from studio.services.epoch_scoring import EpochScorer, ScoringConfig

    service, pretrained, _, run_id, run_dir = trained_run
    assert service.epoch_report(run_id) is None  # --no-epoch-choice: nothing scored by the job
    config = ScoringConfig(sentences_per_epoch=1)
    EpochScorer(pretrained, config=config).score_run(run_dir)  # the real recogniser and speaker encoder
    assert sorted(p.name for p in (run_dir / "epochs").glob("*.safetensors")) == [
        "gpt_e1.safetensors", "gpt_e2.safetensors", "sovits_e1.safetensors", "sovits_e2.safetensors",
    ]  # fmt: skip
    report = service.epoch_report(run_id)
    assert [(s.number, s.gpt_epoch, s.sovits_epoch) for s in report.scores] == [(1, 1, 1), (2, 2, 2)]
    for s in report.scores:
        assert s.cer is not None and 0 <= s.cer <= 1 and s.similarity is not None and s.score is not None
        assert all((run_dir / wav).stat().st_size > 1000 for wav in s.samples)
    assert report.recommended in (1, 2) and report.reason.english()
    assert not set(report.sentences) & {line.split("|")[3] for line in (run_dir.parents[1] / "dataset.list").open()}

    calls = []

    class CountingASR:
        def transcribe(self, audio, rate, lang, max_new_tokens=None, word_times=False):
            calls.append(lang)
            raise AssertionError("a stored epoch was measured again")

    scorer = EpochScorer(pretrained, transcriber=lambda: CountingASR(), config=config)
    assert scorer.score_run(run_dir).scores == report.scores and not calls  # nothing recomputed

    stored = load_report(run_dir)
    stored.scores = stored.scores[:1]  # as if epoch 2 were new
    save_report(run_dir, stored)

    class FixedASR:
        def transcribe(self, audio, rate, lang, max_new_tokens=None, word_times=False):
            from studio.dataprep.transcribe import Transcript

            calls.append(lang)
            return Transcript(report.sentences[len(calls) - 1], lang, 1.0, 0.0, 0.0)

    again = EpochScorer(pretrained, transcriber=lambda: FixedASR(), config=config).score_run(run_dir)
    assert len(calls) == len(report.sentences)  # only the new epoch was measured
    kept, before = again.score_of(1), report.score_of(1)
    assert (kept.cer, kept.similarity, kept.transcripts) == (before.cer, before.similarity, before.transcripts)
    assert again.score_of(2).cer == 0.0 and load_report(run_dir).score_of(2).cer == 0.0


@pytest.mark.slow
def test_add_to_my_voices_takes_the_recommended_epoch_unless_told_otherwise(trained_run):
    from studio.services.voice_packs import VoicePackService
    from studio.voicepack.official import FoundReference

    _, pretrained, ws, run_id, run_dir = trained_run
    report = load_report(run_dir)
    report.recommended = 1  # make the first epoch the recommended one, whatever was measured
    save_report(run_dir, report)
    packs = VoicePackService(ws, pretrained)
    clip = sorted((run_dir.parents[1] / "dataset.list").read_text().splitlines())[0].split("|")
    reference = FoundReference(Path(clip[0]), clip[3], "en")
    default = packs.register_trained_voice("joe", run_id, None, reference, name="joe-default")
    first = packs.register_trained_voice("joe", run_id, None, reference, name="joe-e1", epoch=1)
    last = packs.register_trained_voice("joe", run_id, None, reference, name="joe-e2", epoch=2)
    assert default.training["epoch_choice"] == {"epoch": 1, "gpt": 1, "sovits": 1, "recommended": True}
    assert last.training["epoch_choice"]["recommended"] is False
    assert _same_weights(default.gpt_path, first.gpt_path) and _same_weights(default.sovits_path, first.sovits_path)
    assert not _same_weights(default.gpt_path, last.gpt_path)
    assert not _same_weights(default.sovits_path, last.sovits_path)
    with pytest.raises(Exception, match="no epoch 7"):
        packs.register_trained_voice("joe", run_id, None, reference, name="joe-e7", epoch=7)


def _same_weights(a: Path, b: Path) -> bool:
    import torch

    from studio.models.sovits.checkpoint import load_sovits
    from studio.models.text2semantic_checkpoint import load_text2semantic

    load = load_text2semantic if a.suffix == ".ckpt" else load_sovits
    sa, sb = load(a).model.state_dict(), load(b).model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
