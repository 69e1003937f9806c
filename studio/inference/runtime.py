"""Process-wide settings that make long-running synthesis lean (called once by the CLI, the server and the studio).

glibc's allocator raises its mmap threshold each time a large block is freed, after which big tensors come from
the heap and their memory can stay with the process after they are freed: resident memory crept up to the
largest sentence ever synthesised. So the thresholds are fixed: blocks of 32 MiB and more are mapped on their
own and given back as soon as they are freed, and the heap is trimmed when more than 32 MiB are free at its top.

Why 32 MiB (glibc's maximum on 64-bit systems): the CPU decoder works in fixed windows
(``studio.models.sovits.fast_decoder``), so its working set no longer grows with the sentence, and nearly all of
its activations are ~2.6 MB each. With both thresholds at 1 MiB (the first choice), every one of them was a
fresh mapping (or freshly trimmed heap), zero-filled page by page on first touch: the decoder ran 2–2.5× slower
(a 4 s sentence in 0.82 s instead of 0.30 s in bf16, official size). Measured through the whole int8 chain
(10 s of English, two runs each, alternating): RTF 0.25–0.27 against 0.41–0.42 with both at 1 MiB (and
0.27–0.42 with only the mmap threshold raised), peak memory the same (0.95–0.97 GiB English, 1.44–1.46 GiB
Chinese).

The arenas are left as glibc makes them (one per thread as needed): a single arena for the whole process saved
~30 MB on the compute thread but made PyTorch's int8 GPT path 35 % slower (73 against 110–115 tokens/s), its
OpenMP workers then contending for the one arena's lock. Nothing changes where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from studio.models.weights_cache import trim_freed_memory  # lives with the weights: conversions trim too

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "return_freed_memory", "trim_freed_memory"]

_LOGGER = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # blocks this large and larger are mapped on their own (see the module docstring)
TRIM_THRESHOLD = 32 << 20  # free space kept at the heap's top before it is given back
_DONE = False


def return_freed_memory() -> bool:
    """Make large freed blocks go back to the system (glibc only); True when the settings took."""
    global _DONE
    if _DONE or not sys.platform.startswith("linux"):
        return _DONE
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        _DONE = all([bool(libc.mallopt(param, value)) for param, value in settings])
    except (OSError, AttributeError) as exc:  # musl or another libc: keep its defaults
        _LOGGER.debug("allocator settings unavailable: %s", exc)
    return _DONE
