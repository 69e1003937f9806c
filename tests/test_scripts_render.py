"""Rendering scripts with the tiny golden models: CLI end to end, resume after kill -9, one-line edits, retries."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.audio.io import load_audio
from studio.cli import main
from studio.services.scripts import parse_script
from studio.services.scripts.render import ScriptRenderer
from studio.services.scripts.state import RenderSettings, parse_cast
from studio.services.subtitles import parse_srt
from studio.services.take_qa import TakeQA

REF_TEXT = "Please restart the router before you call the help desk about the slow connection at home."
SCRIPT = "ALICE: Hello there.\nBOB: [style excited] Good morning!\n\nALICE: See you soon.\n"
FAST = ["--max-sentence-s", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def studio_dirs(tiny_pretrained, tiny_s1_ckpt, tiny_s2_pth, voices, tmp_path_factory):
    """(workspace, pretrained): two library voices made from the tiny models; 'ann' has an 'excited' clip."""
    from studio.services.voices import VoiceInfo, VoiceLibrary

    workspace = tmp_path_factory.mktemp("script_ws")
    library = VoiceLibrary(workspace)
    clips = voices / "en_joe" / "clips"
    for name, extra in (("joe", {}), ("ann", {"references/excited.wav": clips / "en_joe_001.wav"})):
        refs = [
            {"file": "references/excited.wav", "text": "The little bakery.", "language": "en", "emotion": "excited"}
        ]
        info = VoiceInfo(name, Path("."), REF_TEXT, "en", ["en"], references=refs if extra else [])
        library.add(info, gpt=tiny_s1_ckpt, sovits=tiny_s2_pth, reference=clips / "en_joe_000.wav", extra_files=extra)
    return workspace, tiny_pretrained


def _cli(studio_dirs, script: Path, out: Path, *extra: str) -> list[str]:
    workspace, pretrained = studio_dirs
    return [
        "render", str(script), "--cast", "ALICE=joe", "--cast", "BOB=ann", "--out", str(out),
        "--workspace", str(workspace), "--pretrained", str(pretrained), "--seed", "7", "--no-check", *FAST, *extra,
    ]  # fmt: skip


def _digests(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted((folder / "lines").glob("*.wav"))
    }


def test_cli_renders_a_script_end_to_end(studio_dirs, tmp_path, capsys):
    script = tmp_path / "scene.script"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "out"
    assert main(_cli(studio_dirs, script, out)) == 0
    printed = capsys.readouterr().out
    assert "[1/3] line 1" in printed and "3 ✓, 0 ⚠, 0 re-rendered (0%)" in printed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    lines = report["lines"]
    assert [(ln["speaker"], ln["voice"], ln["style"]) for ln in lines] == [
        ("ALICE", "joe", None), ("BOB", "ann", "excited"), ("ALICE", "joe", None)
    ]  # fmt: skip
    assert all(ln["status"] == "unchecked" and ln["attempts"] == 1 and ln["seed"] is not None for ln in lines)
    joined, rate = load_audio(out / "scene.wav")
    total = len(joined) / rate
    for i, line in enumerate(lines):
        clip, clip_rate = load_audio(out / "lines" / f"{i:04d}.wav")
        assert abs(len(clip) / clip_rate - line["duration_s"]) < 0.01
    cues = parse_srt((out / "scene.srt").read_text(encoding="utf-8"))
    assert [c.text for c in cues] == ["Hello there.", "Good morning!", "See you soon."]
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))  # in order, pauses between them
    assert cues[-1].end == pytest.approx(total, abs=0.01)
    # the blank line is a paragraph break: the natural preset's 0.8 s paragraph pause after line 2
    assert cues[2].start - cues[1].end == pytest.approx(0.8, abs=0.01)


def test_resume_after_kill_9_redoes_no_finished_line(studio_dirs, tmp_path):
    script = tmp_path / "long.script"
    script.write_text("ALICE: One.\nBOB: Two.\nALICE: Three.\nBOB: Four.\nALICE: Five.\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "studio", *_cli(studio_dirs, script, out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    report = out / "report.json"
    deadline = time.monotonic() + 300
    finished: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            finished = [ln["index"] for ln in json.loads(report.read_text())["lines"] if ln["status"] != "pending"]
        except (OSError, ValueError):
            finished = []
        if finished:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()
    assert 1 <= len(finished) < 5 and not (out / "long.wav").exists()
    before = _digests(out)
    kept = {f"{i:04d}.wav" for i in finished}
    assert kept <= set(before)

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Resuming: {len(before)} of 5 line(s) already rendered" in again.stdout
    after = _digests(out)
    assert set(after) == {f"{i:04d}.wav" for i in range(5)}
    assert {k: after[k] for k in before} == before  # finished lines untouched (same mtime, same bytes)
    assert f"[{len(before) + 1}/5]" in again.stdout and "[1/5]" not in again.stdout


class CountingSynthesis:
    """The real synthesis service, counting the texts it is asked to speak."""

    def __init__(self, service) -> None:
        self.service = service
        self.texts: list[str] = []

    def synthesize(self, request, voice=None):
        self.texts.append(request.text)
        return self.service.synthesize(request, voice)

    def synthesizer(self, voice=None):
        return self.service.synthesizer(voice)


@pytest.fixture(scope="module")
def services(studio_dirs):
    from studio.pretrained import PretrainedAssets
    from studio.services.synthesis import SynthesisService
    from studio.services.voices import VoiceLibrary

    workspace, pretrained = studio_dirs
    return SynthesisService(PretrainedAssets(pretrained), device="cpu"), VoiceLibrary(workspace)


def _renderer(services, folder, text=SCRIPT, checker=None, **settings):
    service, library = services
    counting = CountingSynthesis(service)
    config = RenderSettings(seed=11, max_sentence_s=1.0, check=checker is not None, check_length=False, **settings)
    renderer = ScriptRenderer.create(
        folder, parse_script(text, name="scene"), parse_cast(["ALICE=joe", "BOB=ann"]), config,
        synthesis=counting, voices=library, checker=checker,
    )  # fmt: skip
    return renderer, counting


def test_editing_one_line_rerenders_only_that_line(services, tmp_path):
    renderer, calls = _renderer(services, tmp_path / "r")
    renderer.render()
    before = _digests(tmp_path / "r")
    calls.texts.clear()
    report = renderer.rerender_line(1, text="Good evening!")
    assert calls.texts == ["Good evening!"]
    after = _digests(tmp_path / "r")
    assert {k: after[k] for k in ("0000.wav", "0002.wav")} == {k: before[k] for k in ("0000.wav", "0002.wav")}
    assert after["0001.wav"] != before["0001.wav"] and report.text == "Good evening!"
    assert [c.text for c in parse_srt(renderer.subtitles_path.read_text())][1] == "Good evening!"

    # the same edit made in the script file: opening the render again re-renders nothing
    calls.texts.clear()
    edited = SCRIPT.replace("Good morning!", "Good evening!")
    again, calls = _renderer(services, tmp_path / "r", text=edited)
    again.render()
    assert calls.texts == [] and _digests(tmp_path / "r") == after
    # a new line inserted before the others: only it is rendered; the moved lines reuse their takes
    inserted, calls = _renderer(services, tmp_path / "r", text="BOB: A new first line.\n" + edited)
    status = inserted.render()
    assert calls.texts == ["A new first line."] and status.done == 4


class FirstTryFails:
    """A deterministic stand-in for take QA (tiny models speak noise, which Whisper cannot transcribe): a line's
    first check fails (CER 1.0), later checks pass — except lines containing 'never', which always fail."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def check(self, audio, sample_rate, text, lang, reference=None):
        n = self.seen[text] = self.seen.get(text, 0) + 1
        bad = n == 1 or "never" in text
        return TakeQA(transcript="(noise)" if bad else text, cer=1.0 if bad else 0.0, similarity=0.9)


def test_a_line_failing_qa_is_retried_with_a_new_seed(services, tmp_path):
    script = "ALICE: Hello there.\nBOB: This never works.\n"
    renderer, calls = _renderer(services, tmp_path / "q", text=script, checker=FirstTryFails(), retries=2)
    status = renderer.render()
    first, second = status.lines
    assert (first.status, first.attempts, first.chosen) == ("ok", 2, 1)
    assert first.tries[0].seed != first.tries[1].seed and first.seed == first.tries[1].seed
    assert first.reason == "re-rendered: try 1 failed (CER 1.00 > 0.50)"
    assert (second.status, second.attempts) == ("warn", 3)
    assert second.reason == "CER 1.00 > 0.50 after 3 tries" and len({t.seed for t in second.tries}) == 3
    assert status.rerendered == 2 and calls.texts.count("This never works.") == 3
    saved = json.loads((tmp_path / "q" / "report.json").read_text(encoding="utf-8"))["lines"]
    assert [(ln["symbol"], ln["attempts"]) for ln in saved] == [("✓", 2), ("⚠", 3)]
    assert [t["cer"] for t in saved[0]["tries"]] == [1.0, 0.0]
    # any try can be kept instead, e.g. after an A/B listen
    chosen = renderer.choose_take(0, 0)
    assert chosen.seed == first.tries[0].seed and chosen.status == "warn"
    assert load_audio(renderer.line_audio(0))[0].shape == load_audio(renderer.take_audio(0, 0))[0].shape


def test_unknown_voice_style_and_uncast_speaker_are_refused(services, tmp_path):
    from studio.errors import StudioError
    from studio.services.scripts import ScriptError

    service, library = services
    settings = RenderSettings()
    script = parse_script("ALICE: Hi.\nBOB: [style furious] No.\n")
    with pytest.raises(ScriptError, match="No voice for BOB"):
        ScriptRenderer.create(tmp_path, script, parse_cast(["ALICE=joe"]), settings, synthesis=service, voices=library)
    with pytest.raises(ScriptError, match="line 2: BOB: voice 'ann' has no reference clip tagged 'furious'.*excited"):
        ScriptRenderer.create(
            tmp_path, script, parse_cast(["joe", "BOB=ann"]), settings, synthesis=service, voices=library
        )
    with pytest.raises(StudioError, match="no voice named 'nobody'"):
        ScriptRenderer.create(tmp_path, script, parse_cast(["nobody"]), settings, synthesis=service, voices=library)


def test_subtitle_lines_fit_their_slots_or_say_why(services, tmp_path):
    srt = (
        "1\n00:00:00,000 --> 00:00:00,200\nALICE: Hello there, how are you?\n\n"
        "2\n00:00:12,000 --> 00:00:22,000\nBOB: Fine.\n"
    )
    renderer = ScriptRenderer.create(
        tmp_path / "s", parse_script(srt, "srt", name="dub"), parse_cast(["ALICE=joe", "BOB=ann"]),
        RenderSettings(seed=3, max_sentence_s=1.0, check=False), synthesis=services[0], voices=services[1],
    )  # fmt: skip
    status = renderer.render()
    tight, roomy = status.lines
    assert (tight.status, tight.speed) == ("warn", 1.25)
    assert "to fit its 0.20 s slot (at most 1.25×)" in tight.reason and tight.duration_s > 0.2
    assert (roomy.status, roomy.speed) == ("unchecked", 1.0) and roomy.duration_s <= 10
    assert roomy.start_s == 12.0  # placed at its cue's start
    cues = parse_srt(renderer.subtitles_path.read_text(encoding="utf-8"))
    assert [(c.start, c.text) for c in cues] == [(0.0, "Hello there, how are you?"), (12.0, "Fine.")]
