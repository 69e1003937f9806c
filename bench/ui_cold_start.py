"""Cold start of the studio: seconds from `python webui.py` to the first served page (HTTP 200).

python bench/ui_cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cold_start(workspace: Path, timeout: float = 120.0) -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        sys.executable,
        str(REPO_ROOT / "webui.py"),
        "--no-browser",
        "--port",
        str(port),
        "--workspace",
        str(workspace),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("the studio did not answer")
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        times = [cold_start(Path(tmp)) for _ in range(args.runs)]
    print(
        f"cold start to a served page: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
        f"over {len(times)} runs ({', '.join(f'{t:.2f}' for t in times)})"
    )


if __name__ == "__main__":
    main()
