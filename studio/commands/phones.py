"""``studio phones``: how a text will be read: sentences, language runs, normalised text, phones."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.commands.lexicon_arg import add_lexicon_argument, resolve_lexicon


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "phones",
        help="show how a text will be read (sentences, languages, spelled-out numbers, phones)",
        description="Run the text front end exactly as synthesis does and print each sentence, its language "
        "runs, the normalised text (numbers, dates and symbols spelled out) and the phones the models receive.",
    )
    p.add_argument("--text", required=True, help="the text to read")
    p.add_argument("--lang", default="auto", help="language of the text: auto, zh, en, ja, ko, yue, all_zh, … (auto)")
    p.add_argument("--split", default="cut1", help="how long text is cut into sentences (as studio synth; cut1)")
    p.add_argument("--version", default="v2", choices=["v1", "v2"], help="symbol table of the models (v2)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    add_lexicon_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from studio.text.reading import format_reading, read_text

    lexicon = resolve_lexicon(args.lexicon, args.workspace)
    readings = read_text(args.text, args.lang, args.split, args.version, lexicon=lexicon)
    if args.json:
        data = [
            {
                "sentence": r.sentence,
                "segments": [
                    {"lang": s.lang, "norm_text": s.norm_text, "phones": s.phones, "phone_ids": s.phone_ids}
                    for s in r.segments
                ],
            }
            for r in readings
        ]
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        print(format_reading(readings))
    return 0
