"""HTTP API benchmark: throughput against concurrent clients (continuous batching), requests/s, streaming TTFB.

    python bench/api.py [--per-client 4] [--max-batch 8] [--max-tokens 12] [--official] [--quick]

Starts the real server (uvicorn, localhost, a free port) — by default with the tiny test models from
``$STUDIO_GOLDEN_DIR`` (default ``../shared/golden``) and a reference clip from ``../shared/voices/en_joe``;
with ``--official`` with official-size v2 GPT/SoVITS (random weights written in the official files, a random
HuBERT-base; see ``bench/render.py``) — then measures:

* throughput with 1, 2, 4 and 8 clients at once (each sends ``--per-client`` requests, different texts and
  seeds, one after another): requests/s, seconds of audio per second and the ratio to one client. Concurrent
  requests share GPT decoding steps (``--max-batch``); the machine (``lscpu`` model and SIMD flags) and the load
  average are printed with the figures;
* (tiny models) requests/s for one client after another against ``--clients`` at once, and the time to first
  byte (TTFB) and to the first audio byte for ``streaming_mode`` 1 (per sentence) and 3 (every
  ``min_chunk_length`` tokens), versus the total time of the same request.

Random and tiny GPTs never emit "stop", so every sentence is capped at ``--max-tokens`` semantic tokens
(12 tokens ≈ 0.5 s of audio; use e.g. 100 with ``--official``). ``--quick`` is a smoke run (one request per
client); its figures mean nothing.
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
sys.path.insert(0, str(REPO / "bench"))  # render.py: machine(), the official-size workspace

TEXT = "Hello there. How are you today? The weather is fine."
SWEEP_TEXTS = (
    TEXT,
    "The lighthouse keeper climbed the stairs before dawn.",
    "Did you see the ship on the horizon last night? Nobody answered.",
    "Tomorrow the storm will pass and the boats will come home.",
)


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


def _throughput(url: str, params: list[dict], clients: int, per_client: int) -> tuple[float, float]:
    """(requests/s, audio seconds per second) with ``clients`` clients, each sending ``per_client`` requests one
    after another (different texts and seeds), all clients at once."""

    def client(c: int) -> float:
        audio_s = 0.0
        for k in range(per_client):
            r = requests.post(f"{url}/tts", json=params[(c * per_client + k) % len(params)], timeout=600)
            r.raise_for_status()
            audio_s += (len(r.content) - 44) / 2 / 32000  # 16-bit mono WAV at 32 kHz
        return audio_s

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        audio = sum(pool.map(client, range(clients)))
    took = time.perf_counter() - start
    return clients * per_client / took, audio / took


def _concurrency_table(url: str, params: list[dict], per_client: int, levels=(1, 2, 4, 8)) -> None:
    """Throughput against concurrent clients and each level's ratio to one client."""
    print(f"{'clients':>7} {'requests/s':>11} {'audio s/s':>10} {'× 1 client':>11}")
    base = None
    for n in levels:
        rps, aps = _throughput(url, params, n, per_client)
        base = base or rps
        print(f"{n:>7} {rps:>11.3f} {aps:>10.2f} {rps / base:>10.2f}×")
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _official_server(scratch: Path, args):
    """A server on official-size v2 GPT/SoVITS (random weights in the official files, bench/render.py's
    workspace) and the voice's own reference; returns (server, reference clip)."""
    from api_server import Clip, RunningServer
    from render import build_workspace

    from studio import pretrained as layout
    from studio.api.config import ServerSettings
    from studio.services.synthesis import SynthesisService
    from studio.services.voices import VoiceLibrary

    workspace, pretrained = build_workspace(scratch)
    info = VoiceLibrary(workspace).get("one")
    settings = ServerSettings(workspace=workspace, pretrained=pretrained, voice="one", device="cpu",
                              hubert_dir=pretrained / layout.HUBERT_DIR, bert_dir=scratch / "no-bert",
                              queue_size=64, max_batch=args.max_batch,
                              max_tokens_per_sentence=args.max_tokens)  # fmt: skip
    service = SynthesisService(
        device="cpu", hubert_dir=settings.hubert_dir, bert_dir=settings.bert_dir, precision=args.precision
    )
    return RunningServer(settings, service).start(), Clip(info.reference_audio, info.reference_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--per-client", type=int, default=4, help="requests each client sends in the sweep")
    parser.add_argument("--max-batch", type=int, default=8, help="the server's --max-batch")
    parser.add_argument("--official", action="store_true", help="official-size v2 models (random weights)")
    parser.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | int8 (the server's --precision)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, no timing worth reading")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.per_client = 2, 1

    from api_server import en_clips, make_workspace, start_server, tts_params
    from render import machine

    print(machine())
    golden = Path(os.environ.get("STUDIO_GOLDEN_DIR", REPO.parent / "shared" / "golden")).resolve()
    voices = Path(os.environ.get("STUDIO_VOICES_DIR", REPO.parent / "shared" / "voices")).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        if args.official:
            server, clip = _official_server(workspace, args)
        else:
            s1, s2 = _tiny_files(golden, workspace)
            clip = make_workspace(workspace, en_clips(voices), 1)[0]
            server = start_server(workspace, s1, s2, golden, queue_size=64, max_batch=args.max_batch,
                                  max_tokens_per_sentence=args.max_tokens)  # fmt: skip
        try:
            params = tts_params(clip, text=TEXT, seed=1)
            requests.get(f"{server.url}/tts", params=params, timeout=600).raise_for_status()  # warm up
            size = "official-size v2 (random weights)" if args.official else "tiny"
            print(f"text: {TEXT!r} (3 sentences, ≤ {args.max_tokens} tokens each), {size} models, CPU, "
                  f"--max-batch {args.max_batch}")  # fmt: skip
            sweep = [tts_params(clip, text=t, seed=10 + i) for i, t in enumerate(SWEEP_TEXTS)]
            _concurrency_table(server.url, sweep, args.per_client)
            if not args.official:
                _tiny_extras(server.url, params, args)
        finally:
            server.stop()
    return 0


def _tiny_extras(url: str, params: dict, args) -> None:
    """Sequential against ``--clients`` at once, and streaming time to first byte (tiny models)."""
    start = time.perf_counter()
    for _ in range(args.requests):
        requests.get(f"{url}/tts", params=params, timeout=300).raise_for_status()
    sequential = args.requests / (time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        codes = list(pool.map(lambda _: requests.post(f"{url}/tts", json=params).status_code, range(args.requests)))
    concurrent = args.requests / (time.perf_counter() - start)
    assert codes == [200] * args.requests, codes
    print(f"requests/s, one client at a time: {sequential:.2f}")
    print(f"requests/s, {args.clients} clients at once:   {concurrent:.2f}")
    for mode in (1, 3):
        runs = [_ttfb(url, {**params, "streaming_mode": mode, "min_chunk_length": 4}) for _ in range(5)]
        first, audio, total = (statistics.median(r[i] for r in runs) for i in range(3))
        print(
            f"streaming_mode {mode}: TTFB {first * 1000:.0f} ms, first audio {audio * 1000:.0f} ms, "
            f"whole response {total * 1000:.0f} ms (median of 5)"
        )


if __name__ == "__main__":
    sys.exit(main())
