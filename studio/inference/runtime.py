"""Process-wide settings that make long-running synthesis lean (called once by the CLI, the server and the studio).

glibc's allocator raises its mmap threshold each time a large block is freed, after which big tensors come from
the heap and their memory can stay with the process after they are freed: resident memory crept up to the
largest sentence ever synthesised. So the threshold is fixed, and the heap is trimmed above 1 MiB of free
space at its top.

At which size: the CPU decoder works in fixed windows (``studio.models.sovits.fast_decoder``), so its working
set no longer grows with the sentence, and nearly all of its activations are ~2.6 MB each. With the threshold at
1 MiB (the first choice), every one of them was a fresh mapping, zero-filled page by page on first touch and
unmapped when freed: the decoder ran 2× slower (a 4 s sentence in 0.82 s instead of 0.33 s in bf16, official
size). At 32 MiB (glibc's maximum on 64-bit systems) they are reused from the heap: measured through the whole
int8 chain, 10 s of English synthesised at RTF 0.27–0.33 instead of 0.41–0.42, for 30 MB more peak memory
(0.96 GiB against 0.93). Tensors above 32 MiB (a long sentence's KV cache, model loading) still go back to the
system as soon as they are freed. Nothing changes where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

_LOGGER = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # blocks this large and larger are mapped on their own (see the module docstring)
_DONE = False


def return_freed_memory() -> bool:
    """Make large freed blocks go back to the system (glibc only); True when the setting took."""
    global _DONE
    if _DONE or not sys.platform.startswith("linux"):
        return _DONE
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _DONE = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 20))
    except (OSError, AttributeError) as exc:  # musl or another libc: keep its defaults
        _LOGGER.debug("allocator settings unavailable: %s", exc)
    return _DONE
