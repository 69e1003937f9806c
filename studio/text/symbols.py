"""The phone inventories of GPT-SoVITS and the phone ↔ id maps.

A phone id is the position of the phone in the version's table. ``v1`` has 322 symbols
(zh/ja/en); ``v2`` has 732 and starts with the whole v1 table, then adds the Japanese pitch marks,
the Korean jamo and the Cantonese ``Y…`` symbols. The tables ship as ``data/symbols.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources

from studio.errors import TextError

PAD = "_"
UNK = "UNK"
SP = "SP"
SP2 = "SP2"
SP3 = "SP3"

VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class SymbolTable:
    """One version's ordered phone list and its reverse map."""

    version: str
    symbols: tuple[str, ...]
    ids: dict[str, int] = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, phone: object) -> bool:
        return phone in self.ids

    def id_of(self, phone: str) -> int:
        return self.ids[phone]


@lru_cache(maxsize=1)
def _raw_tables() -> dict[str, list[str]]:
    text = resources.files("studio.text").joinpath("data/symbols.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return {version: data[version] for version in VERSIONS}


@cache
def symbol_table(version: str = "v2") -> SymbolTable:
    """The phone table of ``version`` (``"v1"`` or ``"v2"``; v2Pro/v3/v4 share the v2 table)."""
    name = table_version(version)
    symbols = tuple(_raw_tables()[name])
    return SymbolTable(version=name, symbols=symbols, ids={s: i for i, s in enumerate(symbols)})


def table_version(version: str) -> str:
    """Map a model version name to the phone table it uses: ``v1`` → v1, every later version → v2."""
    if version == "v1":
        return "v1"
    if version in ("v2", "v2Pro", "v2ProPlus", "v3", "v4"):
        return "v2"
    raise TextError(f"Unknown model version {version!r} for the phone table.", hint="Use 'v1' or 'v2'.")


def version_for_table_size(size: int) -> str:
    """Which phone table a model was trained with, from its text-embedding row count (322 → v1, 732 → v2)."""
    for version in VERSIONS:
        if len(symbol_table(version)) == size:
            return version
    sizes = ", ".join(f"{len(symbol_table(v))} ({v})" for v in VERSIONS)
    raise TextError(f"A phone table of {size} symbols matches no known version; expected one of {sizes}.")


def phones_to_ids(phones: list[str], version: str = "v2") -> list[int]:
    """Phone ids of ``phones`` in the version's table (upstream's ``cleaned_text_to_sequence``).

    Raises :class:`TextError` for a phone that is not in the table; :func:`studio.text.cleaner.clean_text`
    already turns such phones into ``UNK``.
    """
    table = symbol_table(version)
    try:
        return [table.ids[p] for p in phones]
    except KeyError as err:
        raise TextError(f"Phone {err.args[0]!r} is not in the {table.version} phone table.") from None


def ids_to_phones(ids: list[int], version: str = "v2") -> list[str]:
    """The inverse of :func:`phones_to_ids`."""
    table = symbol_table(version)
    bad = [i for i in ids if not 0 <= i < len(table)]
    if bad:
        raise TextError(f"Phone id {bad[0]} is out of range for the {table.version} table ({len(table)} symbols).")
    return [table.symbols[i] for i in ids]
