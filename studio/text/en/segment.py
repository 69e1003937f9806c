"""Compound words split into dictionary words ("warmup" → warm up), as the ``wordsegment`` package splits them.

Upstream's English G2P asks ``wordsegment`` for the most probable split of a word no dictionary knows. That
package holds its unigram and bigram counts (~590,000 entries, from the ``wordsegment`` wheel) and a word list
in Python dicts and lists: ~88 MB resident for the rest of the session, the largest part of the English front
end. Here the same counts are held as two sorted arrays of 64-bit string hashes beside their counts (~9 MB),
and the search is the same: the same scores, the same 24-letter limit, the same 250-letter chunks, the same
tie-breaking, so the splits are the package's (checked against it in ``tests/test_text_en.py``).

A 64-bit hash stands in for each string: the chance that two of the ~590,000 counted strings share one is
about 10⁻⁸, and that a word not counted matches a counted one's hash about 3·10⁻¹⁴ per lookup.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.errors import TextError
from studio.text.en.neural import package_data_dir

TOTAL = 1024908267229.0  # words in the corpus the counts come from (the package's constant)
LIMIT = 24  # longest word a split may produce
_CHUNK, _CARRY = 250, 5  # long texts are searched in chunks; the last words of each are searched again
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class CountTable:
    """Read-only string → count table (a tab-separated ``word<TAB>count`` file) stored as sorted hashes."""

    def __init__(self, path: Path) -> None:
        from array import array

        keys, counts = array("Q"), array("d")  # 8 bytes an entry while reading, not a Python object each
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                word, _, count = line.partition("\t")
                keys.append(_key(word))
                counts.append(float(count))
        order = np.argsort(np.frombuffer(keys, dtype=np.uint64), kind="stable")
        sorted_keys = np.frombuffer(keys, dtype=np.uint64)[order]
        # A string listed twice (bigrams.txt repeats ~28,000) counts as its last line, as a dict built in order.
        last = np.append(sorted_keys[1:] != sorted_keys[:-1], True)
        self._keys = sorted_keys[last]
        self._counts = np.frombuffer(counts, dtype=np.float64)[order][last]

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, word: str) -> float | None:
        key = np.uint64(_key(word))
        i = int(np.searchsorted(self._keys, key))
        if i < len(self._keys) and self._keys[i] == key:
            return float(self._counts[i])
        return None


class Segmenter:
    """The most probable split of a run of letters into words, under unigram and bigram counts."""

    def __init__(self, unigrams: CountTable, bigrams: CountTable) -> None:
        self.unigrams, self.bigrams = unigrams, bigrams

    def score(self, word: str, previous: str | None = None, seen: dict | None = None) -> float:
        """Probability of ``word`` (after ``previous``): the bigram's relative to its first word's, when both are
        counted; else the word's own; else a penalty that shrinks tenfold per letter. ``seen``: unigram lookups
        already made by this search (it asks for the same substrings over and over)."""
        seen = {} if seen is None else seen

        def unigram(w: str) -> float | None:
            if w not in seen:
                seen[w] = self.unigrams.get(w)
            return seen[w]

        if previous is not None and unigram(previous) is not None:  # (checked first: it is the cheaper)
            pair = self.bigrams.get(f"{previous} {word}")
            if pair is not None:
                return pair / TOTAL / (unigram(previous) / TOTAL)  # the previous word's own score
        count = unigram(word)
        if count is not None:
            return count / TOTAL
        return 10.0 / (TOTAL * 10 ** len(word))

    def _best(self, text: str, previous: str, memo: dict, seen: dict) -> tuple[float, list[str]]:
        if text == "":
            return 0.0, []
        best: tuple[float, list[str]] | None = None
        for pos in range(1, min(len(text), LIMIT) + 1):
            prefix, suffix = text[:pos], text[pos:]
            key = (suffix, prefix)
            if key not in memo:
                memo[key] = self._best(suffix, prefix, memo, seen)
            rest_score, rest_words = memo[key]
            candidate = (math.log10(self.score(prefix, previous, seen)) + rest_score, [prefix, *rest_words])
            if best is None or candidate > best:  # equal scores: the word lists compare, as in max()
                best = candidate
        assert best is not None
        return best

    def segment(self, text: str) -> list[str]:
        """Words of ``text`` (lower-cased, anything but letters and digits dropped)."""
        clean = "".join(c for c in text.lower() if c in _ALPHABET)
        words: list[str] = []
        carry = ""
        memo: dict = {}
        seen: dict = {}
        for offset in range(0, len(clean), _CHUNK):
            _, found = self._best(carry + clean[offset : offset + _CHUNK], "<s>", memo, seen)
            carry = "".join(found[-_CARRY:])
            words.extend(found[:-_CARRY])
        words.extend(self._best(carry, "<s>", memo, seen)[1])
        return words


@lru_cache(maxsize=1)
def segmenter() -> Segmenter:
    """The segmenter over the ``wordsegment`` wheel's counts (loaded once, on the first unknown compound)."""
    folder = package_data_dir("wordsegment")
    try:
        return Segmenter(CountTable(folder / "unigrams.txt"), CountTable(folder / "bigrams.txt"))
    except OSError as exc:
        raise TextError(
            f"The 'wordsegment' package's word counts could not be read ({exc}).",
            hint="Run: pip install --force-reinstall wordsegment",
        ) from exc
