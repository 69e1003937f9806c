"""Wall time of `studio prep` for one minute of audio (the long noisy take), excluding the first model load.

python bench/prep.py [--denoise 0.5] [--input ../shared/voices/raw_take/raw_take_noisy.wav]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from studio.audio.io import load_audio
    from studio.dataprep.clean import CleanConfig, clean_audio
    from studio.dataprep.pipeline import PrepOptions, run_prep
    from studio.dataprep.transcribe import WhisperTranscriber
    from studio.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, default=ROOT.parent / "shared/voices/raw_take/raw_take_noisy.wav")
    parser.add_argument("--denoise", type=float, default=0.5)
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()

    transcriber = WhisperTranscriber()
    t0 = time.perf_counter()
    transcriber.load()
    audio, sr = load_audio(args.input)
    clean_audio(audio[: sr * 2], sr, CleanConfig(denoise=args.denoise))  # warm imports (scipy, noisereduce)
    transcriber.transcribe(audio[: sr * 2], sr, args.lang)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = run_prep(
            [args.input],
            Workspace("bench", Path(tmp)),
            PrepOptions(language=args.lang, denoise=args.denoise),
            transcriber=transcriber,
        )
        wall = time.perf_counter() - t0
    minutes = len(audio) / sr / 60
    print(f"input: {args.input.name}, {minutes * 60:.1f} s, denoise {args.denoise}")
    print(f"model load + warm-up: {load_s:.1f} s (excluded)")
    print(f"prep wall time: {wall:.1f} s ({wall / minutes:.1f} s per minute of audio), {report.new_slices} clips")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings_s.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
