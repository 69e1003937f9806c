"""Start SoVITS Studio in the browser: ``python webui.py [--host 127.0.0.1] [--port N|auto] [--workspace DIR]
[--pretrained DIR] [--no-browser] [--api [PORT]] [--api-key KEY]``. Binds to this computer only unless told
otherwise; web pages of other sites can reach neither the studio nor its API (``studio.api.middleware``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from studio.commands.argtypes import port_number, port_or_auto
from studio.commands.ports import claim_port, free_or_default

DEFAULT_PORT = 7860
NOT_GIVEN = -1  # --port absent: 7860, or a free port when 7860 is taken (a port the user names never moves)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SoVITS Studio: clone a voice in your browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument(
        "--port",
        default=NOT_GIVEN,
        type=port_or_auto,
        help=f"port number or 'auto' (default {DEFAULT_PORT}, or a free one if it is taken); a port you name "
        "that is taken is an error",
    )
    parser.add_argument("--workspace", type=Path, help="folder for projects, voices and takes")
    parser.add_argument("--pretrained", type=Path, help="folder of the base model files")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument(
        "--api",
        nargs="?",
        const=9880,
        type=port_number,
        metavar="PORT",
        help="also serve the HTTP API (api_v2 + OpenAI) on PORT (default 9880), sharing the studio's loaded models",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="with --api: require this key on every API route (default: $STUDIO_API_KEY; without either, only "
        "/set_* and /control need a key: the one stored in <workspace>/config/api_key)",
    )
    args = parser.parse_args(argv)
    from studio.inference.runtime import return_freed_memory

    return_freed_memory()  # large freed tensors go back to the system (long sessions stay lean)
    from studio.errors import StudioError

    try:
        _start(args)
    except (StudioError, OSError) as exc:  # a clear line, never a traceback, for what the user can fix
        raise SystemExit(f"error: {exc}") from None


def _start(args: argparse.Namespace) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at start
    no_proxy = "localhost,127.0.0.1,::1"  # a system proxy must not intercept the local page (F5-TTS#210)
    for key in ("NO_PROXY", "no_proxy"):
        os.environ[key] = ",".join(filter(None, [os.environ.get(key), no_proxy]))

    from studio.services.studio import Studio
    from studio.settings import StudioSettings
    from studio.ui.app import build_app

    settings = StudioSettings()
    if args.workspace:
        settings.workspace = args.workspace.expanduser().resolve()
    if args.pretrained:
        settings.pretrained = args.pretrained.expanduser().resolve()
    else:  # the folder chosen in Models & Settings ("Use this folder"), kept in the workspace settings
        from studio.ui.i18n import Preferences

        saved = Preferences(settings.workspace).get("pretrained_dir")
        settings.pretrained = Path(saved) if saved and Path(saved).is_dir() else settings.pretrained
    port = free_or_default(args.host, DEFAULT_PORT) if args.port == NOT_GIVEN else claim_port(args.host, args.port)
    studio = Studio(settings)
    missing = studio.pretrained.missing_for_any_base()  # any complete base version is enough
    if missing:
        print(f"Base models are missing in {studio.pretrained.root}:", flush=True)
        for item in missing:
            print(f"  - {item.path}  ({item.purpose})", flush=True)
        print("Get them with `studio download` (or the Download button in Models & Settings).", flush=True)
    if args.api:
        start_api(studio, args.host, claim_port(args.host, args.api, what="--api port"), args.api_key)
    app = build_app(studio)
    print(f"SoVITS Studio: http://{args.host}:{port}  (workspace: {settings.workspace})", flush=True)
    from studio.ui.local_page import launch_options

    app.launch(
        server_name=args.host,
        server_port=port,
        inbrowser=not args.no_browser,
        allowed_paths=[str(settings.workspace)],
        # nothing on the page comes from outside this computer; no page elsewhere can drive it
        **launch_options(studio, {"middleware": [guard_middleware(args.host)]}),
    )


def guard_middleware(host: str):
    """The API's Host/cross-site guard in front of the studio page and every ``/gradio_api`` route.

    Gradio 5's own CORS rules only decide who may *read* an answer (and let any localhost port read), and it
    checks no Host header; a page elsewhere could still make the studio run its functions. A link to the
    start page from elsewhere still opens it.
    """
    from starlette.middleware import Middleware

    from studio.api.middleware import LocalGuard

    return Middleware(LocalGuard, host=host, navigable=("/",))


def start_api(studio, host: str, port: int, api_key: str | None = None) -> None:
    """The HTTP API of ``studio serve`` in a background thread, using the studio's own synthesis service;
    the same key rules (``--api-key``, ``$STUDIO_API_KEY``, the workspace's stored key) and guard."""
    import threading

    import uvicorn

    from studio.api.app import create_app
    from studio.api.config import ServerSettings
    from studio.commands.serve import key_notice
    from studio.services.api_key import resolve_keys

    if studio.pretrained.missing_for_any_base():
        print("HTTP API not started: it needs the base models (see above).", flush=True)
        return
    keys = resolve_keys(studio.workspace_root, api_key)
    settings = ServerSettings(
        workspace=studio.workspace_root,
        pretrained=studio.pretrained.root,
        api_key=keys.given,
        control_key=keys.control,
        host=host,
    )
    api = create_app(settings, service=studio.synthesis)
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="warning"))
    api.state.control.server = server
    threading.Thread(target=server.run, name="studio-api", daemon=True).start()
    print(f"HTTP API: http://{host}:{port}  (api_v2 /tts, OpenAI /v1/audio/speech)", flush=True)
    print(key_notice(settings), flush=True)


if __name__ == "__main__":
    main()
