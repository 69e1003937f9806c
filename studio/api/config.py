"""Settings of the HTTP server: which models it speaks with, which files it may read, how many requests wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import StudioError
from studio.pretrained import default_pretrained_dir
from studio.workspace import default_workspace_root

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9880
DEFAULT_QUEUE_SIZE = 16
DEFAULT_MAX_BATCH = 8  # requests synthesised at once; their GPT stages share one decoding batch
MAX_TEXT_CHARS = 4096  # the longest ``text``/``input`` a request may send (OpenAI's own limit)
MAX_BODY_BYTES = 1 << 20  # a request body larger than this is refused with 413


@dataclass
class ServerSettings:
    """Everything :func:`studio.api.app.create_app` needs.

    * ``voice``: a voice of the library (``<workspace>/voices/<name>``) loaded at start; its reference clip and
      transcript become the default reference. Otherwise ``gpt_path``/``sovits_path`` (or the base models) are
      used and the default reference comes from ``ref_audio``/``ref_text``/``ref_lang`` or ``/set_refer_audio``.
    * ``allow_dirs``: folders besides the workspace and ``pretrained/`` whose files requests may name.
    * ``queue_size``: how many requests may wait behind the ones being synthesised; more get a 503.
    * ``max_batch``: how many requests are synthesised at once; their GPT stages are decoded together in one
      batch that sentences join and leave at every step (``studio.inference.batching``). 1 = one at a time.
    * ``max_tokens_per_sentence``: a cap on semantic tokens per sentence (1500 = upstream's; lower it for
      untrained or tiny models that never say "stop").
    * ``api_key``: the key the user gave (``--api-key``/``$STUDIO_API_KEY``): every route then needs it.
      ``control_key``: the key state-changing routes (``/set_*``, ``/control``) need; defaults to ``api_key``,
      else to the workspace's stored per-install key (``studio.services.api_key``).
    * ``host``/``allow_origins``: the host the server answers to besides localhost and IP addresses, and web
      origins (``http://host:port``) besides its own whose pages may call it (see ``studio.api.middleware``).
    * ``max_text_chars``/``max_body_bytes``: the longest text a request may synthesise, the largest body.
    * ``length_retries``: re-generate a sentence whose length is implausible for its text (skipped or repeated
      words) up to this many times; 0 (default) = upstream's behaviour. Not applied to streaming modes 2–3.
    """

    workspace: Path = field(default_factory=default_workspace_root)
    pretrained: Path = field(default_factory=default_pretrained_dir)
    voice: str | None = None
    gpt_path: Path | None = None
    sovits_path: Path | None = None
    hubert_dir: Path | None = None
    bert_dir: Path | None = None
    ref_audio: Path | None = None
    ref_text: str = ""
    ref_lang: str = "auto"
    api_key: str | None = None
    control_key: str | None = None
    host: str = DEFAULT_HOST
    allow_origins: tuple[str, ...] = ()
    max_text_chars: int = MAX_TEXT_CHARS
    max_body_bytes: int = MAX_BODY_BYTES
    allow_dirs: tuple[Path, ...] = ()
    queue_size: int = DEFAULT_QUEUE_SIZE
    max_batch: int = DEFAULT_MAX_BATCH
    device: str | None = None
    precision: str = "auto"  # auto | fp32 | bf16 | int8 (studio.inference.precision_choice)
    max_tokens_per_sentence: int = 1500
    length_retries: int = 0
    preload: bool = True

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace).expanduser()
        self.pretrained = Path(self.pretrained).expanduser()
        self.allow_dirs = tuple(Path(p).expanduser() for p in self.allow_dirs)
        if self.queue_size < 0:
            raise StudioError(f"The queue size must be 0 or more (got {self.queue_size}).")
        if not 1 <= self.max_batch <= 64:
            raise StudioError(f"The batch size must be between 1 and 64 (got {self.max_batch}).")
        if self.api_key:
            self.control_key = self.api_key
        elif not self.control_key:
            from studio.services.api_key import install_key

            self.control_key = install_key(self.workspace)
        if self.max_text_chars < 1 or self.max_body_bytes < 1024:
            raise StudioError("The text limit must be at least 1 character and the body limit at least 1024 bytes.")
        if not 0 <= self.length_retries <= 10:
            raise StudioError(f"Length retries must be between 0 and 10 (got {self.length_retries}).")
