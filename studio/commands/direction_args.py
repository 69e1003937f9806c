"""``studio synth`` options that direct the voice: a style clip apart from the timbre, a weighted timbre mix, and
pauses by punctuation. Shared by every command that synthesises, so the flags mean the same everywhere."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def timbre_ref(text: str) -> tuple[Path, float]:
    """``CLIP`` or ``CLIP:WEIGHT`` (weight ≥ 0, default 1). A colon not followed by a number is part of the path."""
    head, sep, tail = text.rpartition(":")
    if not sep or not head:
        return Path(text), 1.0
    try:
        weight = float(tail)
    except ValueError:
        return Path(text), 1.0  # e.g. C:\\clips\\a.wav
    if not math.isfinite(weight) or weight < 0:
        raise argparse.ArgumentTypeError(f"the weight of a timbre clip must be a number ≥ 0, got {tail!r}")
    return Path(head), weight


def add_direction_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("directing the voice")
    g.add_argument(
        "--style-ref",
        default=None,
        metavar="CLIP|TAG",
        help="a clip whose delivery (pace, emotion) the speech follows; with --voice also a tagged reference "
        "of the voice (e.g. calm, excited). Default: the reference itself",
    )
    g.add_argument("--style-ref-text", default=None, help="transcript of --style-ref (a tagged reference has its own)")
    g.add_argument("--style-ref-lang", default=None, help="language of --style-ref-text (default: same as --lang)")
    g.add_argument(
        "--timbre-ref",
        type=timbre_ref,
        action="append",
        default=[],
        metavar="CLIP[:W]",
        help="a clip whose voice colour to use, with a relative weight (default 1); repeat to mix voices, e.g. "
        "--timbre-ref a.wav:1 --timbre-ref b.wav:3. Default: the reference itself",
    )
    g.add_argument(
        "--pauses",
        default=None,
        metavar="PRESET|FILE.json",
        help="silences by punctuation inside and between sentences: natural, audiobook, fast, or a JSON file of "
        "seconds per mark (comma, full_stop, question, ellipsis, dash, paragraph). Without it --pause is "
        "the silence between sentences",
    )


def direction_fields(args: argparse.Namespace, voice_clips: list[tuple[Path, dict]] | None) -> dict:
    """The :class:`SynthesisRequest` fields of these options. ``voice_clips``: the --voice's reference clips
    (``VoiceLibrary.reference_clips``), where --style-ref may name one by its emotion tag."""
    from studio.errors import StudioError
    from studio.inference.pauses import PauseMap

    fields: dict = {"timbre_references": tuple(args.timbre_ref)}
    if args.pauses:
        fields["pauses"] = PauseMap.parse(args.pauses)
    if args.style_ref:
        path, text, lang = Path(args.style_ref), args.style_ref_text, args.style_ref_lang
        if not path.is_file():
            tagged = {meta["emotion"].lower(): (clip, meta) for clip, meta in voice_clips or [] if meta["emotion"]}
            if args.style_ref.lower() not in tagged:
                tags = ", ".join(sorted(tagged)) or "none"
                raise StudioError(
                    f"The style clip {args.style_ref} is neither a file nor a tagged reference of the voice "
                    f"(its tags: {tags}).",
                    hint="Pass an audio file, or with --voice one of the voice's reference tags.",
                )
            path, meta = tagged[args.style_ref.lower()]
            text = meta["text"] if text is None else text
            lang = lang or meta["language"] or None
        fields |= {"style_reference": path, "style_ref_text": text or "", "style_ref_lang": lang or args.lang}
    return fields
