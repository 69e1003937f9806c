"""One module per ``studio`` verb: ``add_parser(subparsers)`` + ``run(args) -> int``."""
