"""What every HTTP request meets first, on both servers (the API and the studio page): who may send it and how big.

:class:`LocalGuard` keeps web pages away from a server meant for this computer:

* **Host** (against DNS rebinding): the ``Host`` header must be an IP address, ``localhost`` (or a name under
  it), this machine's name or the host the server was started with. A rebinding page reaches the server
  under *its own* domain name, which is none of these.
* **Cross-site** (against a page the user happens to visit): a request whose ``Origin`` is not the server's
  own (``host:port`` as in ``Host``), whose ``Sec-Fetch-Site`` is ``cross-site``/``same-site`` (another port
  of localhost is "same-site"), or which has no ``Origin`` but a ``Referer`` from elsewhere is refused with 403,
  whatever the route and method. Only plain navigation to the paths in ``navigable`` (the studio's start
  page) is let through from elsewhere, so a link to the studio still opens it.

Programs (api_v2 clients, the ``openai`` SDK, curl) send none of these headers and pass; the studio page
itself is same-origin and passes. An old browser that sends no ``Sec-Fetch-*`` and no ``Referer`` could still
fire a simple GET, which is why state-changing routes also need the API key (see ``studio.services.api_key``).

:class:`BodyLimit` answers 413 to a request body over the limit, before a route reads it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    503: "server_busy",
}


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_body(path: str, status: int, message: str, exception: str | None = None, *, param: str | None = None):
    """OpenAI's ``{"error": {...}}`` under ``/v1``, api_v2's ``{"message": ...}`` everywhere else."""
    if is_openai_path(path):
        code = {401: "invalid_api_key", 413: "request_too_large"}.get(status)
        return {
            "error": {
                "message": message if exception is None else f"{message}: {exception}",
                "type": _OPENAI_ERROR_TYPES.get(status, "server_error"),
                "param": param,
                "code": code,
            }
        }
    body = {"message": message}
    if exception is not None:
        body["Exception"] = exception
    return body


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` or ``[v6][:port]`` → (lower-case host without brackets, port or None)."""
    try:
        parts = urlsplit("//" + value.strip())
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def machine_names() -> frozenset[str]:
    try:
        name = socket.gethostname().lower()
    except OSError:
        return frozenset()
    return frozenset({name, name + ".local", name.split(".")[0]})


class LocalGuard:
    """ASGI middleware: refuses foreign ``Host`` headers and cross-site browser requests (403)."""

    def __init__(
        self,
        app,
        *,
        host: str = "127.0.0.1",
        allow_origins: Iterable[str] = (),
        navigable: Iterable[str] = (),
        body: Callable[[str, int, str], dict] = error_body,
    ) -> None:
        self.app = app
        configured = _split_host(host)[0] or host.strip("[]").lower()
        self.hosts = LOCAL_NAMES | machine_names() | {configured}
        self.origins = frozenset(o.rstrip("/").lower() for o in allow_origins)
        self.navigable = frozenset(navigable)
        self.body = body

    def host_allowed(self, host: str) -> bool:
        return _is_ip(host) or host in self.hosts or host.endswith(".localhost")

    def refusal(self, scope) -> str | None:
        """Why this request may not reach the app, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host, port = _split_host(headers.get("host", ""))
        if not self.host_allowed(host):
            return (
                f"Host {headers.get('host', '')!r} is not this server's: it answers only to localhost, its IP "
                "addresses and the host it was started with (protection against DNS rebinding)."
            )
        own = (host, port)
        origin = headers.get("origin")
        referer = headers.get("referer")
        site = headers.get("sec-fetch-site", "").lower()
        foreign = None
        if origin is not None:
            foreign = None if self._same(origin, own) else origin
        elif site in ("cross-site", "same-site"):
            foreign = "another site"
        elif referer and not self._same(referer, own):
            foreign = referer
        if site in ("cross-site", "same-site") and foreign is None and origin is not None:
            foreign = origin  # a same-host Origin with a cross-site fetch: trust the browser's verdict
        if foreign is None or self._navigation(scope, headers):
            return None
        return (
            "Requests from web pages of other sites are refused: this server only takes requests from its "
            "own page and from programs on this computer."
        )

    def _same(self, url: str, own: tuple[str, int | None]) -> bool:
        if url.rstrip("/").lower() in self.origins:
            return True
        try:
            parts = urlsplit(url)
            theirs = ((parts.hostname or "").lower(), parts.port)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https"):
            return False  # "null", file:, data:, extensions
        if parts.port is None:
            theirs = (theirs[0], {"http": 80, "https": 443}[parts.scheme])
        mine = own if own[1] is not None else (own[0], {"http": 80, "https": 443}[parts.scheme])
        if f"{parts.scheme}://{parts.netloc}".lower() in self.origins:
            return True
        return theirs == mine

    def _navigation(self, scope, headers: dict[str, str]) -> bool:
        """A person following a link to the start page (never a subresource, never a POST)."""
        return (
            scope.get("method") in ("GET", "HEAD")
            and scope.get("path") in self.navigable
            and headers.get("sec-fetch-mode") == "navigate"
            and headers.get("sec-fetch-dest", "document") == "document"
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _send_json(send, 403, self.body(scope.get("path", ""), 403, reason))


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body without a declared length grows past the limit; FastAPI passes
    HTTP exceptions through to the app's handler, which answers 413 in the route family's shape."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is too large: this server takes at most {max_bytes:,} bytes.")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 (declared length or counted as it comes)."""

    def __init__(self, app, *, max_bytes: int, body: Callable[[str, int, str], dict] = error_body) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body = body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        for key, value in scope.get("headers", ()):
            if key.lower() == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_json(send, 413, self.body(path, 413, BodyTooLarge(self.max_bytes).detail))
                return
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await _send_json(send, 413, self.body(path, 413, exc.detail))
