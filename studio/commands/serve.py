"""``studio serve``: the HTTP API (GPT-SoVITS api_v2 compatible + OpenAI-compatible speech)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from studio.commands.argtypes import add_precision_argument, port_or_auto, ranged

_LOGGER = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP API (api_v2 compatible and OpenAI /v1/audio/speech)",
        description="Serve speech synthesis over HTTP. api_v2 clients: point them at http://HOST:PORT (same "
        "/tts parameters). OpenAI clients: base_url http://HOST:PORT/v1, voice = a voice name or 'default'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument(
        "--port",
        type=port_or_auto,
        default=9880,
        help="port, or 'auto' for any free one (default: 9880, as GPT-SoVITS api_v2); a busy port is an error",
    )
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="base models folder (default: pretrained/)")
    p.add_argument("--hubert-dir", type=Path, default=None, help="content encoder folder (default: in --pretrained)")
    p.add_argument("--bert-dir", type=Path, default=None, help="Chinese BERT folder (default: in --pretrained)")
    p.add_argument("--voice", default=None, help="a voice of the library to load (its reference becomes the default)")
    p.add_argument("--gpt", type=Path, default=None, help="a GPT .ckpt to load instead of a library voice")
    p.add_argument("--sovits", type=Path, default=None, help="a SoVITS .pth to load instead of a library voice")
    p.add_argument("--ref-audio", type=Path, default=None, help="default reference clip (with --gpt/--sovits)")
    p.add_argument("--ref-text", default="", help="transcript of --ref-audio")
    p.add_argument("--ref-lang", default="auto", help="language of --ref-text (default: auto)")
    p.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on every route (default: $STUDIO_API_KEY; without either, "
        "only /set_* and /control need a key: the one stored in <workspace>/config/api_key)",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (e.g. http://localhost:3000) call this server (repeatable)",
    )
    p.add_argument(
        "--max-text-chars",
        type=ranged(int, 1, 1_000_000, "the text limit"),
        default=4096,
        metavar="N",
        help="longest text one request may synthesise (default 4096)",
    )
    p.add_argument(
        "--allow-dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also allow requests to name files in DIR (repeatable)",
    )
    p.add_argument(
        "--queue-size",
        type=ranged(int, 0, 10000, "the queue size"),
        default=16,
        help="requests that may wait; more get 503 (default: 16)",
    )
    p.add_argument(
        "--max-batch",
        type=ranged(int, 1, 64, "the batch size"),
        default=8,
        metavar="N",
        help="requests synthesised at once, their GPT stages decoded in one shared batch (default: 8; 1 = one "
        "at a time)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_precision_argument(p)
    p.add_argument("--max-tokens", type=int, default=1500, help="cap on semantic tokens per sentence (default 1500)")
    p.add_argument(
        "--length-retries",
        type=ranged(int, 0, 10, "length retries"),
        default=0,
        metavar="N",
        help="re-generate a sentence whose length looks wrong for its text (skipped/repeated words) up to N times "
        "(default 0 = as upstream)",
    )
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace):
    from studio.api.config import ServerSettings
    from studio.services.api_key import resolve_keys
    from studio.workspace import default_workspace_root

    if args.voice and (args.gpt or args.sovits):
        from studio.errors import StudioError

        raise StudioError("Give either --voice or --gpt/--sovits, not both.")
    keys = resolve_keys(args.workspace or default_workspace_root(), args.api_key)
    kwargs = {
        "voice": args.voice,
        "gpt_path": args.gpt,
        "sovits_path": args.sovits,
        "ref_audio": args.ref_audio,
        "ref_text": args.ref_text,
        "ref_lang": args.ref_lang,
        "api_key": keys.given,
        "control_key": keys.control,
        "host": args.host,
        "allow_origins": tuple(args.allow_origin),
        "max_text_chars": args.max_text_chars,
        "allow_dirs": tuple(args.allow_dir),
        "queue_size": args.queue_size,
        "max_batch": args.max_batch,
        "device": args.device,
        "precision": args.precision,
        "max_tokens_per_sentence": args.max_tokens,
        "length_retries": args.length_retries,
        "hubert_dir": args.hubert_dir,
        "bert_dir": args.bert_dir,
    }
    if args.workspace:
        kwargs["workspace"] = args.workspace
    if args.pretrained:
        kwargs["pretrained"] = args.pretrained
    return ServerSettings(**kwargs)


def key_notice(settings) -> str:
    """The line that tells the user which key the server wants, and where it is kept."""
    if settings.api_key:
        return "API key required on every route (Authorization: Bearer <key>), as given with --api-key/$STUDIO_API_KEY."
    from studio.services.api_key import key_file

    return (
        f"API key for /set_* and /control: {settings.control_key}  (kept in {key_file(settings.workspace)}; "
        "send it as 'Authorization: Bearer <key>')"
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from studio.api.app import create_app
    from studio.commands.ports import claim_port

    settings = settings_from_args(args)
    port = claim_port(args.host, args.port)  # before the models load: a busy port is one line, at once
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=port, log_level="info", workers=1))
    control = app.state.control
    control.server = server
    control.reexec_on_restart = True
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        _LOGGER.warning("listening on %s without --api-key: anyone on the network can use this server", args.host)
    app.state.engine.start()  # load the models now: a bad file is a clear error, not a failed startup trace
    print(f"HTTP API: http://{args.host}:{port}  (api_v2 /tts, OpenAI /v1/audio/speech)", flush=True)
    print(key_notice(settings), flush=True)
    server.run()
    if control.restart_requested:  # /control?command=restart: start afresh, same arguments
        argv = [sys.executable, *sys.orig_argv[1:]]  # as launched: `python -m studio …` or the `studio` script
        _LOGGER.warning("restarting: %s", " ".join(argv))
        os.execv(sys.executable, argv)
    return 0
