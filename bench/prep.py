"""Wall time of `studio prep` for one minute of audio (the long noisy take), excluding the first model load.

python bench/prep.py [--denoise 0.5] [--input ../shared/voices/raw_take/raw_take_noisy.wav] [--lang en] [--repeat 3]
      [--no-pack]

The machine may be busy with other work: each run prints the load average next to its time, and the best of
``--repeat`` runs is the figure to quote. With the take's ``segments.csv`` beside the input, the WER is printed too.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from studio.audio.io import load_audio
    from studio.corpus import read_list
    from studio.dataprep.clean import CleanConfig, clean_audio
    from studio.dataprep.pipeline import PrepOptions, run_prep
    from studio.dataprep.transcribe import WhisperTranscriber
    from studio.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, default=ROOT.parent / "shared/voices/raw_take/raw_take_noisy.wav")
    parser.add_argument("--denoise", type=float, default=0.5)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pack", action="store_true", help="transcribe each clip in its own window (old way)")
    args = parser.parse_args()

    transcriber = WhisperTranscriber(pack=not args.no_pack)
    t0 = time.perf_counter()
    transcriber.load()
    audio, sr = load_audio(args.input)
    clean_audio(audio[: sr * 2], sr, CleanConfig(denoise=args.denoise))  # warm imports (scipy, noisereduce)
    transcriber.transcribe(audio[: sr * 2], sr, args.lang)
    load_s = time.perf_counter() - t0
    minutes = len(audio) / sr / 60
    print(
        f"input: {args.input.name}, {minutes * 60:.1f} s, denoise {args.denoise}, lang {args.lang}, cpus {os.cpu_count()}"
    )
    print(f"model load + warm-up: {load_s:.1f} s (excluded)")
    walls = []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            ws = Workspace("bench", Path(tmp))
            load_before = os.getloadavg()[0]
            t0, cpu0 = time.perf_counter(), time.process_time()
            report = run_prep(
                [args.input], ws, PrepOptions(language=args.lang, denoise=args.denoise), transcriber=transcriber
            )
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            texts = [e.text for e in read_list(ws.dataset_list)]
        walls.append(wall)
        asr = report.timings_s.get("transcribe", 0.0)
        print(
            f"run {run + 1}: {wall:.1f} s ({wall / minutes:.1f} s per minute of audio), transcription {asr:.1f} s "
            f"({asr / wall:.0%}), CPU time {cpu:.1f} s, {report.new_slices} clips, load avg {load_before:.1f} → {os.getloadavg()[0]:.1f}"
        )
        print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings_s.items()))
        wer = _wer(args.input, texts)
        if wer is not None:
            print(f"  WER {wer:.1%} against segments.csv")
    print(f"best of {len(walls)}: {min(walls):.1f} s per {minutes * 60:.0f} s of audio")
    return 0


def _wer(audio_path: Path, texts: list[str]) -> float | None:
    from studio.dataprep.lint import normalise_text

    truth_file = audio_path.parent / "segments.csv"
    if not truth_file.is_file():
        return None
    with open(truth_file, encoding="utf-8") as f:
        truth = [r["text"] for r in csv.DictReader(f)]
    if len(truth) != len(texts):
        return None
    errors = total = 0
    for ref, hyp in zip(truth, texts, strict=True):
        r, h = normalise_text(ref.replace("'", "")).split(), normalise_text(hyp.replace("'", "")).split()
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        errors, total = errors + row[-1], total + len(r)
    return errors / max(1, total)


if __name__ == "__main__":
    sys.exit(main())
