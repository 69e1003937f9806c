"""Which port a server gets: the one asked for, or (only with ``--port auto``) any free one.

A port the user named that is taken is a clear one-line error, never a silent move to another port: clients
and bookmarks point at the port they were told.
"""

from __future__ import annotations

import socket

from studio.errors import StudioError


def _bindable(host: str, port: int) -> int | None:
    """The port ``host:port`` binds to (0 → the one the system picks), or None when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError:
            return None
        return sock.getsockname()[1]


def claim_port(host: str, port: int | None, *, what: str = "--port") -> int:
    """``port`` if it is free on ``host`` (a clear :class:`StudioError` if not); ``None`` (auto) → a free one."""
    if port is None:
        free = _bindable(host, 0)
        if free is None:
            raise StudioError(f"Cannot serve on {host}: no port can be opened there (is it this computer's address?)")
        return free
    got = _bindable(host, port)
    if got is None:
        if _bindable(host, 0) is None:
            raise StudioError(f"Cannot serve on {host}: no port can be opened there (is it this computer's address?)")
        raise StudioError(
            f"Port {port} on {host} is already in use.",
            hint=f"Stop the program using it, choose another {what}, or use {what} auto for any free port.",
        )
    return got


def free_or_default(host: str, port: int) -> int:
    """``port`` when free, else any free port: only for a default the user did not ask for."""
    return port if _bindable(host, port) is not None else claim_port(host, None)
