"""Is a sentence's generated length plausible for its text? The guard against skipped and repeated words.

The GPT stage sometimes ends a sentence far too early (words swallowed) or runs on (words repeated, the
reference text leaking in): the #1 complaint of GPT-SoVITS users. Upstream's training data keeps only
utterances speaking 3–25 phones per second (SPEC §9.3), so a sentence generated outside that band is almost
surely a failure. Semantic tokens run at 25 per second, so the band is a pure count rule: no ASR needed.
"""

from __future__ import annotations

import math

from studio.corpus import PHONES_PER_SECOND, SEMANTIC_TOKENS_PER_SECOND

TOKENS_PER_SECOND = SEMANTIC_TOKENS_PER_SECOND
MIN_PHONES_PER_SECOND, MAX_PHONES_PER_SECOND = PHONES_PER_SECOND


def phones_per_second(n_phones: int, n_tokens: int) -> float:
    """Speaking rate the generated length implies (``inf`` for no tokens at all)."""
    if n_tokens <= 0:
        return math.inf
    return n_phones * TOKENS_PER_SECOND / n_tokens


def length_gap(n_phones: int, n_tokens: int) -> float:
    """0 when the length is plausible; otherwise how far outside the band it is (log ratio, > 0)."""
    rate = phones_per_second(n_phones, n_tokens)
    if rate == math.inf:
        return math.inf
    if rate < MIN_PHONES_PER_SECOND:
        return math.log(MIN_PHONES_PER_SECOND / rate)
    if rate > MAX_PHONES_PER_SECOND:
        return math.log(rate / MAX_PHONES_PER_SECOND)
    return 0.0
