"""Argparse value types that refuse bad numbers with a sentence a person understands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def ranged(
    parse: type[int] | type[float], low: float | None, high: float | None, what: str
) -> Callable[[str], int | float]:
    """A type that parses with ``parse`` (int or float) and accepts ``low <= value <= high`` (None = open)."""
    kind = "a whole number" if parse is int else "a number"
    if low is not None and high is not None:
        wanted = f"{what} must be between {low} and {high}"
    elif low is not None:
        wanted = f"{what} must be {low} or more"
    else:
        wanted = f"{what} must be {high} or less"

    def convert(text: str) -> int | float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} is {kind}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{wanted}, got {value}")
        return value

    return convert


positive = ranged(int, 1, None, "the value")
port_number = ranged(int, 0, 65535, "a port")  # 0 = any free port
strength = ranged(float, 0.0, 1.0, "the strength")


def port_or_auto(text: str) -> int | None:
    """A port, or ``auto`` → ``None`` (pick a free one)."""
    return None if text.strip().lower() == "auto" else port_number(text)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16|int8``, the same for every command that synthesises."""
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8"),  # studio.models.precision.PRECISION_CHOICES, without torch
        default="auto",
        help="inference precision: fp32 = exact; bf16/int8 = lighter weights, faster where this CPU gains from them; "
        "auto (default) = the fastest mode that passes the quality checks on this machine",
    )
