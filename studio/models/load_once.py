"""A model built the first time it is asked for, once, under a lock — the heart of the lazy holders
(HuBERT, the Chinese BERT, the speaker-verification model), which load only when their work really arrives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class LoadOnce(Generic[T]):
    """``build()`` on the first :meth:`get`; later and concurrent callers get the same object. ``why`` is logged
    when it loads ("loading HuBERT from … (a new reference clip)")."""

    def __init__(self, build: Callable[[], T], why: str) -> None:
        self._build, self._why = build, why
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    _LOGGER.info("%s", self._why)
                    self._value = self._build()
                value = self._value
        return value
