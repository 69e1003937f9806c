"""What the HTTP API lets a caller touch: which files (an allow-list of folders) and who (an optional key).

Upstream's api_v2 opens any path a request names. Here a path is resolved (``..`` and symbolic links
included) and must lie inside the workspace, ``pretrained/`` or a folder given with ``--allow-dir``;
anything else is refused with 403 and a message naming the allowed folders.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from pathlib import Path

from fastapi import Request
from fastapi.security import HTTPBearer

from studio.errors import StudioError

# Declares the scheme in the OpenAPI schema; the check itself is :meth:`ApiKeyCheck.verify`.
bearer_scheme = HTTPBearer(auto_error=False, description="The key given to `studio serve --api-key`.")


class ApiError(StudioError):
    """An error answered with ``status`` and a JSON body (shape chosen per route family by the app)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        exception: str | None = None,
        hint: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.exception = exception
        self.param = param  # the request field at fault (OpenAI's error ``param``)


class PathGuard:
    """Resolves request paths and refuses those outside the allowed folders."""

    def __init__(self, roots: Iterable[Path], *, base: Path) -> None:
        self.roots = tuple(dict.fromkeys(_resolve(Path(r)) for r in roots))
        self.base = _resolve(Path(base))

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots) or "none"

    def is_allowed(self, path: Path) -> bool:
        resolved = _resolve(path)
        return any(resolved == root or resolved.is_relative_to(root) for root in self.roots)

    def resolve(self, raw: str | os.PathLike, what: str, *, must_exist: bool = True) -> Path:
        """The absolute path for ``raw`` (relative paths start at the workspace), or an :class:`ApiError`.

        403 when the path is outside the allowed folders, 400 when it does not name an existing file.
        """
        text = os.fspath(raw).strip()
        if not text:
            raise ApiError(400, f"{what} is required")
        if "\x00" in text:
            raise ApiError(400, f"{what}: the path contains a NUL character")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base / path
        resolved = _resolve(path)
        if not self.is_allowed(resolved):
            raise ApiError(
                403,
                f"{what} {text!r} is outside the folders this server may read ({self.describe()}). "
                "Put the file in the workspace, or start the server with --allow-dir FOLDER.",
            )
        if must_exist and not resolved.is_file():
            raise ApiError(400, f"{what}: no such file: {text}")
        return resolved


def _resolve(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop or an unreadable component
        return Path(os.path.abspath(path))


class ApiKeyCheck:
    """Compares the request's ``Authorization: Bearer KEY`` (or ``X-API-Key``) with the server's key.

    ``missing`` is the 401 message when no key was sent (the state-changing routes say where the key is).
    """

    def __init__(self, key: str | None, missing: str | None = None) -> None:
        self.key = key or None
        self.missing = missing or "An API key is required: send the header 'Authorization: Bearer <key>'."

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def verify(self, request: Request) -> None:
        if self.key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not given:
            raise ApiError(401, self.missing)
        if not hmac.compare_digest(given.encode("utf-8"), self.key.encode("utf-8")):
            raise ApiError(401, "The API key is not valid.")
