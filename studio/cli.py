"""``studio`` command line: one module per verb in :mod:`studio.commands`.

Every verb module defines ``add_parser(subparsers)`` (cheap: no heavy imports) and ``run(args) -> int``.
A :class:`~studio.errors.StudioError` is printed as a short message with its hint, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from studio import __version__
from studio.errors import StudioError

VERBS = ("synth", "render", "phones", "download", "prep", "train", "export", "import", "serve")


def _verb_module(verb: str):
    name = "import_" if verb == "import" else verb
    try:
        return importlib.import_module(f"studio.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"studio.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="SoVITS Studio: local voice cloning.")
    parser.add_argument("--version", action="version", version=f"sovits-studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for verb in VERBS:
        module = _verb_module(verb)
        if module is not None:
            module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    from studio.inference.runtime import return_freed_memory

    return_freed_memory()
    try:
        return int(args.run(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file or folder the user named cannot be used: say which, and why
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where} (run with -v for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
