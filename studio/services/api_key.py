"""The per-install API key: made once, kept in ``<workspace>/config/api_key`` (mode 0600), shown to the user.

State-changing HTTP routes (``/set_*``, ``/control``) always need a key, so a web page the user happens to
visit cannot change or stop a local server even when the browser sends neither Origin nor Sec-Fetch headers.
The key a person gives (``--api-key`` or ``$STUDIO_API_KEY``) wins over the stored one and then guards every
route; the stored key only guards the state-changing ones, so api_v2 clients keep synthesising without one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError

ENV_VAR = "STUDIO_API_KEY"
KEY_FILE = Path("config") / "api_key"


@dataclass(frozen=True)
class ApiKeys:
    """``given``: the key the user chose (guards every route); ``control``: the key state changes need."""

    given: str | None
    control: str
    source: str  # "--api-key", "$STUDIO_API_KEY" or the key file's path


def key_file(workspace: Path) -> Path:
    return Path(workspace).expanduser() / KEY_FILE


def install_key(workspace: Path) -> str:
    """The workspace's stored key, created (32 random bytes, URL-safe) with mode 0600 on first use."""
    path = key_file(workspace)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise StudioError(f"Cannot read the API key file {path}: {exc.strerror}.") from exc
    if text:
        return text
    key = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        os.chmod(path, 0o600)  # also when the file existed empty with wider rights
    except OSError as exc:
        raise StudioError(
            f"Cannot store the API key in {path}: {exc.strerror}.",
            hint="Make the workspace writable, or give a key with --api-key / $STUDIO_API_KEY.",
        ) from exc
    return key


def resolve_keys(workspace: Path, given: str | None = None) -> ApiKeys:
    """The keys a server uses: ``given`` (the ``--api-key`` value), else ``$STUDIO_API_KEY``, else the file's."""
    if given:
        return ApiKeys(given, given, "--api-key")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return ApiKeys(env, env, f"${ENV_VAR}")
    return ApiKeys(None, install_key(workspace), str(key_file(workspace)))
