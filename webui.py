"""Start SoVITS Studio in the browser: ``python webui.py [--host 127.0.0.1] [--port N|auto] [--workspace DIR]
[--pretrained DIR] [--no-browser]``. Binds to this computer only unless told otherwise."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

DEFAULT_PORT = 7860


def free_port(host: str, preferred: int | None) -> int:
    """``preferred`` if it can be bound on ``host``, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f"no free port on {host}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SoVITS Studio: clone a voice in your browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this computer only)")
    parser.add_argument(
        "--port",
        default=str(DEFAULT_PORT),
        help=f"port number or 'auto' (default {DEFAULT_PORT}, or a free one if it is taken)",
    )
    parser.add_argument("--workspace", type=Path, help="folder for projects, voices and takes")
    parser.add_argument("--pretrained", type=Path, help="folder of the base model files")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    args = parser.parse_args(argv)

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
    port = free_port(args.host, None if args.port == "auto" else int(args.port))
    studio = Studio(settings)
    missing = studio.pretrained.missing()
    if missing:
        print(f"Base models are missing in {studio.pretrained.root}:", flush=True)
        for item in missing:
            print(f"  - {item.path}  ({item.purpose})", flush=True)
        print("Get them with `studio download` (or the Download button in Models & Settings).", flush=True)
    app = build_app(studio)
    print(f"SoVITS Studio: http://{args.host}:{port}  (workspace: {settings.workspace})", flush=True)
    app.launch(
        server_name=args.host, server_port=port, inbrowser=not args.no_browser, allowed_paths=[str(settings.workspace)]
    )


if __name__ == "__main__":
    main()
