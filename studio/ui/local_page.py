"""Keep the studio's page local: nothing it loads comes from outside this computer, and Gradio's own strings
("Drop File Here", "Record", the footer) follow the studio's interface language.

Gradio's page template asks a public CDN for a script (iframe-resizer, only needed when a page embeds the app)
and opens connections to Google Fonts; its themes fetch their fonts from Google Fonts. The studio promises that
nothing leaves the machine, and the page must work offline, so:

* :func:`local_theme_fonts` gives a theme system font stacks instead of web fonts;
* :class:`LocalPageMiddleware` rewrites the HTML page as it is served: it drops every ``<script src>`` and
  ``<link href>`` pointing off the machine, and adds a small script that tells Gradio's front end which of its
  built-in translations to use (it otherwise follows the browser's language, not the studio's switch).

The page's script also defines ``window.studioSetLocale(lang)``, which the language switch calls so that
Gradio's strings change at once, without a reload.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

#: the studio's language codes → the locale names of Gradio's front-end translations
GRADIO_LOCALES = {"en": "en", "zh": "zh-CN", "ja": "ja"}
SANS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Noto Sans", "Arial", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace")

_EXTERNAL = r"""(?:https?:)?//(?!(?:127\.0\.0\.1|localhost)[:/])"""
_EXTERNAL_TAGS = re.compile(
    rf"""<script\b[^>]*\bsrc\s*=\s*["']{_EXTERNAL}[^>]*>\s*</script>|<link\b[^>]*\bhref\s*=\s*["']{_EXTERNAL}[^>]*>""",
    re.IGNORECASE,
)


def local_theme_fonts() -> dict[str, tuple[str, ...]]:
    """``font``/``font_mono`` arguments for a ``gr.themes`` theme: local fonts only (no Google Fonts)."""
    return {"font": SANS, "font_mono": MONO}


def gradio_locale_module() -> str | None:
    """The front-end module (below ``assets/``) that exports Gradio's ``changeLocale``, or None if not found."""
    try:
        import gradio

        assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
        for path in sorted(assets.glob("index-*.js")):
            if "changeLocale" in path.read_text(encoding="utf-8", errors="ignore")[-4000:]:
                return path.name
    except OSError as exc:  # a damaged install: Gradio then follows the browser's language
        _LOGGER.warning("cannot find Gradio's locale module: %s", exc)
    return None


def locale_script(lang: str, module: str | None) -> str:
    """A ``<script>`` run before Gradio starts: its locale is the studio's language, switchable later."""
    locales = json.dumps(GRADIO_LOCALES)
    return (
        "<script>(function(){"
        f"var L={locales},M={json.dumps(module)};"
        "function use(lang){var loc=L[lang]||'en';"
        "try{Object.defineProperty(navigator,'language',{configurable:true,get:function(){return loc;}});"
        "Object.defineProperty(navigator,'languages',{configurable:true,get:function(){return [loc];}});}catch(e){}"
        "document.documentElement.lang=loc;return loc;}"
        f"use({json.dumps(lang)});"
        "window.studioSetLocale=function(lang){var loc=use(lang);"
        "if(!M){return;}"
        "return import(new URL('assets/'+M,document.baseURI).href).then(function(m){m.changeLocale(loc);});};"
        "})();</script>"
    )


def rewrite_page(html: str, lang: str, module: str | None) -> str:
    """The page without off-machine scripts and links, with the locale script first in ``<head>``."""
    html = _EXTERNAL_TAGS.sub("", html)
    return re.sub(r"<head>", lambda m: m.group(0) + locale_script(lang, module), html, count=1)


class LocalPageMiddleware:
    """ASGI middleware for the Gradio app: rewrites HTML pages with :func:`rewrite_page` (other responses pass)."""

    def __init__(self, app, language: Callable[[], str]) -> None:
        self.app, self.language = app, language
        self.module = gradio_locale_module()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if not headers.get(b"content-type", b"").startswith(b"text/html") or b"content-encoding" in headers:
                    start["pass"] = True
                    await send(message)
                    return
                start["message"] = message
                return
            if start.get("pass"):
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await self._send_page(start["message"], b"".join(chunks), send)

        await self.app(scope, receive, capture)

    async def _send_page(self, start, body: bytes, send) -> None:
        page = rewrite_page(body.decode("utf-8", errors="replace"), self.language(), self.module).encode("utf-8")
        headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(page)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": page})


def launch_options(studio, app_kwargs: dict | None = None) -> dict:
    """Keyword arguments for ``Blocks.launch``: the local-page middleware, reading the saved UI language."""
    from starlette.middleware import Middleware

    from studio.ui.i18n import Preferences

    prefs = Preferences(studio.workspace_root)
    kwargs = dict(app_kwargs or {})
    kwargs["middleware"] = [
        *kwargs.get("middleware", []),
        Middleware(LocalPageMiddleware, language=lambda: prefs.language),
    ]
    return {"app_kwargs": kwargs}
