"""HTTP API benchmark with the tiny models: requests per second and streaming time to first byte.

    python bench/api.py [--requests 20] [--clients 4] [--max-tokens 12]

Starts the real server (uvicorn, localhost, a free port) with the tiny test models from
``$STUDIO_GOLDEN_DIR`` (default ``../shared/golden``) and a reference clip from ``../shared/voices/en_joe``,
then measures:

* requests/s for one client after another, and for ``--clients`` clients at once (one model instance:
  requests queue, so concurrency mostly hides network and encoding time);
* time to first byte (TTFB) and to the first audio byte for ``streaming_mode`` 1 (per sentence) and 3
  (every ``min_chunk_length`` tokens), versus the total time of the same request.

The tiny GPT never emits "stop", so every sentence is capped at ``--max-tokens`` semantic tokens
(12 tokens ≈ 0.5 s of audio). Figures are for this toy size only; see ``bench/engine.py`` for full size.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test helpers start the real server in a thread

TEXT = "Hello there. How are you today? The weather is fine."


def _tiny_files(golden: Path, scratch: Path) -> tuple[Path, Path]:
    s2 = golden / "tiny_s2G.pth"
    if not s2.is_file():
        s2 = scratch / "tiny_s2G.pth"
        with lzma.open(golden / "tiny_s2G.pth.xz") as src, open(s2, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return golden / "tiny_s1.ckpt", s2


def _ttfb(url: str, params: dict) -> tuple[float, float, float]:
    """(first byte, first audio byte, total) seconds for one streamed request."""
    start = time.perf_counter()
    first = first_audio = None
    seen = 0
    with requests.get(f"{url}/tts", params=params, stream=True, timeout=300) as r:
        r.raise_for_status()
        for block in r.iter_content(chunk_size=None):
            now = time.perf_counter() - start
            first = first if first is not None else now
            seen += len(block)
            if first_audio is None and seen > 44:
                first_audio = now
    return first or 0.0, first_audio or 0.0, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=12)
    args = parser.parse_args(argv)

    from api_server import en_clips, make_workspace, start_server, tts_params

    golden = Path(os.environ.get("STUDIO_GOLDEN_DIR", REPO.parent / "shared" / "golden")).resolve()
    voices = Path(os.environ.get("STUDIO_VOICES_DIR", REPO.parent / "shared" / "voices")).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        s1, s2 = _tiny_files(golden, workspace)
        clip = make_workspace(workspace, en_clips(voices), 1)[0]
        server = start_server(workspace, s1, s2, golden, queue_size=64, max_tokens_per_sentence=args.max_tokens)
        try:
            params = tts_params(clip, text=TEXT, seed=1)
            requests.get(f"{server.url}/tts", params=params, timeout=300).raise_for_status()  # warm up

            start = time.perf_counter()
            for _ in range(args.requests):
                requests.get(f"{server.url}/tts", params=params, timeout=300).raise_for_status()
            sequential = args.requests / (time.perf_counter() - start)

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                codes = list(
                    pool.map(
                        lambda _: requests.post(f"{server.url}/tts", json=params).status_code, range(args.requests)
                    )
                )
            concurrent = args.requests / (time.perf_counter() - start)
            assert codes == [200] * args.requests, codes

            print(f"text: {TEXT!r} (3 sentences, ≤ {args.max_tokens} tokens each), tiny models, CPU")
            print(f"requests/s, one client at a time: {sequential:.2f}")
            print(f"requests/s, {args.clients} clients at once:   {concurrent:.2f}")
            for mode in (1, 3):
                runs = [_ttfb(server.url, {**params, "streaming_mode": mode, "min_chunk_length": 4}) for _ in range(5)]
                first, audio, total = (statistics.median(r[i] for r in runs) for i in range(3))
                print(
                    f"streaming_mode {mode}: TTFB {first * 1000:.0f} ms, first audio {audio * 1000:.0f} ms, "
                    f"whole response {total * 1000:.0f} ms (median of 5)"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
