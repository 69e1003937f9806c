"""The one tree of errors the studio raises on purpose.

Every error a user can cause (a bad file, an empty text, a missing model) is a
:class:`StudioError` subclass with a short human message and, where useful, a
``hint`` saying what to do next. The CLI and the HTTP API show ``str(error)`` and never a traceback; the
studio's page shows the message with ``ui_hint`` (when given) instead of the command-line ``hint``, under a
title chosen by the error's class (``studio/ui/errors.py``).
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class: a problem the user can understand and fix."""

    def __init__(self, message: str, *, hint: str | None = None, ui_hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # what to do next in the studio's page when ``hint`` speaks the command line ("run studio prep"):
        # an English sentence that is also a key of the UI's i18n tables (shown instead of ``hint`` there)
        self.ui_hint = ui_hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        return f"{self.message}{chr(10) if chr(10) in self.message else ' '}{self.hint}"


class TextError(StudioError):
    """The text to speak (or the prompt text) cannot be used: empty, only symbols, …"""


class UnsupportedLanguageError(TextError):
    """A language code the front end does not know."""


class AudioError(StudioError):
    """An audio file cannot be read or is unusable (empty, corrupt, silent, …)."""


class ReferenceAudioError(AudioError):
    """The reference clip for zero-shot synthesis is too short, too long or silent."""


class CheckpointError(StudioError):
    """A model file is truncated, corrupt, of the wrong kind or of an unknown version."""


class MissingPretrainedError(StudioError):
    """Base model files are not where they should be."""


class WorkspaceError(StudioError):
    """A voice project name or folder is invalid, or a workspace file is damaged."""


class DatasetError(StudioError):
    """The prepared dataset is unusable (too little audio, bad list lines, …)."""


class ASRModelMissingError(StudioError):
    """No speech-recognition model could be found locally."""


class TrainingError(StudioError):
    """A training job cannot start or failed."""


class VoicePackError(StudioError):
    """A voice pack is invalid, of an unknown version, or unsafe to open."""


class DownloadError(StudioError):
    """A file could not be fetched (no connection, the server refused, a corrupted transfer)."""


class SubtitleError(StudioError):
    """A subtitle file (SRT/WebVTT) is malformed, or subtitles cannot be made for a take."""
