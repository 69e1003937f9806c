"""The allocator's housekeeping (studio.inference.runtime): memory a model load freed below live blocks goes back
to the system when trimmed. Linux/glibc only."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")

_FREED = """
import sys
from studio.inference import compute_thread
from studio.inference.runtime import return_freed_memory, trim_freed_memory
assert return_freed_memory()
def anon_mib():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) >> 10
# ~200 MB of heap blocks (below the mmap threshold), from the compute thread's own arena, as a model load's
blocks = compute_thread.run(lambda: [bytearray(b"x" * 200_000) for _ in range(1000)])
keep = blocks[-1]  # a live block above the rest: the heap's top is not free, so the threshold never trims it
del blocks
before = anon_mib()
if sys.argv[1] == "trim":
    trim_freed_memory()
print(before, anon_mib())
"""


@pytest.mark.parametrize("trim", [False, True])
def test_memory_freed_below_live_blocks_goes_back_once_trimmed(trim):
    done = subprocess.run(
        [sys.executable, "-c", _FREED, "trim" if trim else "keep"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    if trim:
        assert before - after > 150  # MiB given back
    else:
        assert before - after < 20
