"""``studio synth``: text + a reference clip → a 32 kHz WAV, with the base models or any voice's files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from studio.commands.argtypes import add_precision_argument, ranged
from studio.commands.direction_args import add_direction_arguments, direction_fields
from studio.commands.lexicon_arg import add_lexicon_argument, resolve_lexicon
from studio.inference.requests import SEED_MAX


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesize speech from text with a reference clip",
        description="Synthesize speech. Model files default to the base models in pretrained/.",
    )
    p.add_argument("--text", required=True, help="what to say")
    p.add_argument(
        "--lang", default="auto", help="language of --text: auto, zh, en, ja, all_zh, all_ja, … (default auto)"
    )
    p.add_argument("--ref", type=Path, help="reference clip, 3–10 s (default: the voice's own clip with --voice)")
    p.add_argument("--ref-text", default=None, help="transcript of the reference (empty: reference-free mode)")
    p.add_argument("--ref-lang", default=None, help="language of --ref-text (default: same as --lang)")
    p.add_argument("--aux-ref", type=Path, action="append", default=[], help="extra clip(s) averaged into the timbre")
    p.add_argument(
        "--out", type=Path, required=True, help="output file: .wav, .mp3, .ogg, .flac or .opus (by its extension)"
    )
    p.add_argument("--voice", default=None, help="a voice from the library (workspace/voices/NAME)")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="folder of base models (default: pretrained/)")
    p.add_argument("--gpt", type=Path, default=None, help="GPT weights (.ckpt); default: the base model")
    p.add_argument("--sovits", type=Path, default=None, help="SoVITS weights (.pth); default: the base model")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_precision_argument(p)
    p.add_argument("--top-k", type=int, default=15)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--repetition-penalty", type=float, default=1.35)
    p.add_argument("--speed", type=float, default=1.0, help="0.6–1.65 is the useful range (duration, not pitch)")
    p.add_argument("--noise-scale", type=float, default=0.5, help="acoustic variation; 0 = deterministic decoder")
    p.add_argument("--energy", type=float, default=1.0, help="loudness-contour scale around its mean (1 = unchanged)")
    p.add_argument("--pause", type=float, default=0.3, help="seconds of silence between sentences (no --pauses)")
    p.add_argument("--split", default="cut1", help="how to cut long text: cut0–cut5 or a method name (default cut1)")
    p.add_argument(
        "--seed", type=ranged(int, -1, SEED_MAX, "the seed"), default=-1, help="same seed → same audio; -1 = random"
    )
    p.add_argument("--max-tokens", type=int, default=1500, help="cap on semantic tokens per sentence (25 per second)")
    p.add_argument("--auto-trim", action="store_true", help="trim a reference longer than 10 s instead of refusing it")
    p.add_argument(
        "--length-retries",
        type=ranged(int, 0, 10, "length retries"),
        default=0,
        metavar="N",
        help="re-generate a sentence whose length looks wrong for its text (skipped/repeated words) up to N times",
    )
    p.add_argument(
        "--subtitles",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write subtitles with word timing, .srt or .vtt by the extension (transcribes with Whisper)",
    )
    add_lexicon_argument(p)
    add_direction_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio.audio.encoding import AI_MARKER, encode, format_for_path
    from studio.audio.io import save_wav
    from studio.errors import StudioError
    from studio.inference.requests import SynthesisRequest
    from studio.pretrained import PretrainedAssets
    from studio.services.synthesis import SynthesisService, VoiceModels

    out_format = format_for_path(str(args.out))  # an unknown extension is refused before any work
    assets = PretrainedAssets(args.pretrained) if args.pretrained else PretrainedAssets()
    transcriber = _subtitle_transcriber(args, assets) if args.subtitles else None  # a missing model: before work
    service = SynthesisService(assets, device=args.device, precision=args.precision)
    ref, ref_text, ref_lang = args.ref, args.ref_text, args.ref_lang
    voice, voice_clips = None, None
    if args.voice:
        from studio.services.voices import VoiceLibrary
        from studio.settings import default_workspace_dir

        library = VoiceLibrary(args.workspace or default_workspace_dir())
        info = library.get(args.voice)
        voice, voice_clips = info.models, library.reference_clips(info)
        if ref is None:
            ref, ref_text = info.reference_audio, info.reference_text if ref_text is None else ref_text
            ref_lang = ref_lang or info.reference_lang
    if args.gpt or args.sovits:
        base = voice or service.base_voice()
        voice = VoiceModels(args.gpt or base.gpt_path, args.sovits or base.sovits_path)
    direction = direction_fields(args, voice_clips)
    if ref is None:
        raise StudioError("No reference clip given.", hint="Pass --ref CLIP.wav (3–10 s of the voice) or --voice NAME.")
    request = SynthesisRequest(
        text=args.text,
        lang=args.lang,
        reference=ref,
        ref_text=ref_text or "",
        ref_lang=ref_lang or args.lang,
        aux_references=tuple(args.aux_ref),
        top_k=args.top_k,
        top_p=args.top_p,
        temperature=args.temperature,
        repetition_penalty=args.repetition_penalty,
        speed=args.speed,
        noise_scale=args.noise_scale,
        energy=args.energy,
        pause_s=args.pause,
        split=args.split,
        seed=args.seed,
        auto_trim_reference=args.auto_trim,
        max_tokens_per_sentence=args.max_tokens,
        length_retries=args.length_retries,
        lexicon=resolve_lexicon(args.lexicon, args.workspace),
        **direction,
    )
    start = time.perf_counter()
    result = service.synthesize(request, voice)
    if out_format == "wav":
        save_wav(args.out, result.audio, result.sample_rate, metadata={"comment": AI_MARKER})
    else:
        from studio.workspace import atomic_write_bytes

        atomic_write_bytes(args.out, encode(result.audio, result.sample_rate, out_format))
    if transcriber is not None:
        _write_subtitles(args, transcriber, result)
    took = time.perf_counter() - start
    print(
        f"Wrote {args.out} ({result.duration_s:.2f} s at {result.sample_rate} Hz, {len(result.sentences)} sentence(s), "
        f"seed {result.seed}) in {took:.1f} s."
    )
    redone = sum(1 for n in result.attempts if n > 1)
    if redone:
        print(
            f"Re-generated {redone} sentence(s) whose length looked wrong for the text ({sum(result.attempts)} tries)."
        )
    return 0


def _subtitle_transcriber(args: argparse.Namespace, assets):
    """The Whisper model take QA uses (the one chosen in the workspace's settings), checked before synthesis."""
    from studio.dataprep.transcribe import WhisperTranscriber
    from studio.errors import SubtitleError
    from studio.services.asr_choice import ASRChoice
    from studio.settings import default_workspace_dir

    if args.subtitles.suffix.lower() not in (".srt", ".vtt"):
        raise SubtitleError(
            f"Unknown subtitle format {args.subtitles.name!r}.", hint="Use a name ending in .srt or .vtt."
        )
    return WhisperTranscriber(ASRChoice(args.workspace or default_workspace_dir(), assets).path(), device="cpu")


def _write_subtitles(args: argparse.Namespace, transcriber, result) -> None:
    from studio.services.subtitles import cues_from_words, write_subtitles
    from studio.services.word_timing import transcribe_word_times

    lang = args.lang.removeprefix("all_")
    words = transcribe_word_times(transcriber, result.audio, result.sample_rate, args.text, lang)
    write_subtitles(cues_from_words(words), args.subtitles)
    print(f"Wrote {args.subtitles} ({len(words)} timed words).")
