"""Records shared by the per-language text modules and the front end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CleanedText:
    """One language segment after normalisation and G2P (upstream's ``clean_text`` result).

    ``word2ph`` has one entry per character of ``norm_text`` (Chinese and Cantonese only): how many
    phones that character produced. ``sum(word2ph) == len(phones)``. Other languages give ``None``.
    """

    phones: list[str]
    word2ph: list[int] | None
    norm_text: str
