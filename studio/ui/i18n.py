"""UI strings in English, Chinese and Japanese, and the studio's saved preferences.

Keys are English ids: usually the English text itself (``"Start training"``), or a dotted id for long help
texts (``"help.synthesize"``) whose English wording lives in ``en.json``. A missing translation falls back to
English, then to the key. Placeholders use ``str.format`` names: ``t("Saved {n} takes", n=3)``.

Translations live in ``locales/<lang>.json`` and, so that several people can add strings without editing the
same file, in ``locales/<part>.<lang>.json`` (e.g. ``train.zh.json``); all files of a language are merged.

The chosen language is stored in ``<workspace>/settings.json`` (never taken from the OS locale), so it is the
same after a reload or a restart.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from studio.workspace import atomic_write_json

_LOGGER = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文", "ja": "日本語"}
DEFAULT_LANGUAGE = "en"
SETTINGS_FILE = "settings.json"


def load_locale(lang: str, folder: Path = LOCALES_DIR) -> dict[str, str]:
    """Every string of ``lang``: ``<lang>.json`` first, then ``*.<lang>.json`` in name order."""
    table: dict[str, str] = {}
    files = [folder / f"{lang}.json", *sorted(folder.glob(f"*.{lang}.json"))]
    for path in files:
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _LOGGER.error("ignoring unreadable locale file %s: %s", path, exc)
            continue
        table.update({str(k): str(v) for k, v in data.items()})
    return table


class I18n:
    """Looks strings up in the current language; loaded once per process."""

    def __init__(self, folder: Path = LOCALES_DIR) -> None:
        self.tables = {lang: load_locale(lang, folder) for lang in LANGUAGES}
        self._missing: set[tuple[str, str]] = set()

    def t(self, key: str, lang: str = DEFAULT_LANGUAGE, **fmt: Any) -> str:
        text = self.tables.get(lang, {}).get(key)
        if text is None:
            if lang != DEFAULT_LANGUAGE and (lang, key) not in self._missing:
                self._missing.add((lang, key))
                _LOGGER.debug("no %s translation for %r", lang, key)
            text = self.tables[DEFAULT_LANGUAGE].get(key, key)
        if fmt:
            try:
                return text.format(**fmt)
            except (KeyError, IndexError, ValueError):
                return self.tables[DEFAULT_LANGUAGE].get(key, key).format(**fmt)
        return text


class Preferences:
    """Small UI preferences (language, current project) in ``<workspace>/settings.json``."""

    def __init__(self, workspace_root: Path) -> None:
        self.path = Path(workspace_root) / SETTINGS_FILE
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning("ignoring unreadable %s: %s", self.path, exc)
            return {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.load().get(key, default)

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            data = self.load()
            data[key] = value
            atomic_write_json(self.path, data)

    @property
    def language(self) -> str:
        lang = self.get("ui_language", DEFAULT_LANGUAGE)
        return lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    @language.setter
    def language(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown UI language {lang!r}; expected one of {', '.join(LANGUAGES)}")
        self.set("ui_language", lang)
