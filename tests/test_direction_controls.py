"""The Synthesize tab's directing controls turn into take settings: a weighted timbre mix (an uploaded clip is kept
in the take store, so the take keeps working after the upload's temporary file is gone), edited seconds per mark,
and refusals in words. The layout and the style clip are driven in a real browser in tests/ui/test_synthesize_tab.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio.errors import StudioError
from studio.inference.pauses import PauseMap
from studio.services.takes import ZERO_SHOT, TakeStore
from studio.services.voices import VoiceLibrary
from studio.ui.context import UIContext
from studio.ui.i18n import I18n, Preferences
from studio.ui.tabs._direction import CUSTOM, MARKS, NO_PAUSE_MAP, TIMBRE_ROWS, DirectionHandlers


@pytest.fixture
def handlers(tmp_path) -> DirectionHandlers:
    studio = SimpleNamespace(
        workspace_root=tmp_path,
        voices=VoiceLibrary(tmp_path),
        takes=SimpleNamespace(store=TakeStore(tmp_path / "takes")),
    )
    return DirectionHandlers(studio, UIContext(studio=studio, i18n=I18n(), prefs=Preferences(tmp_path)))


def _rows(*filled) -> list:
    rows = [r for row in filled for r in row]
    return rows + [None, None, 1.0] * (TIMBRE_ROWS - len(filled))


def test_an_uploaded_timbre_clip_is_kept_with_its_weight(handlers, voices, tmp_path):
    upload = tmp_path / "gradio-temp" / "b.wav"
    upload.parent.mkdir()
    shutil.copyfile(sorted((voices / "en_joe" / "clips").glob("*.wav"))[1], upload)
    library_clip = str(sorted((voices / "en_joe" / "clips").glob("*.wav"))[0])
    rows = _rows((library_clip, None, 1.0), ("", str(upload), 3.0))
    got = handlers.settings(ZERO_SHOT, "", *rows, NO_PAUSE_MAP, *[0.1] * len(MARKS))
    (first, w1), (second, w3) = got["timbre_mix"]
    assert (first, w1, w3) == (library_clip, 1.0, 3.0)
    shutil.rmtree(upload.parent)  # the browser's temporary upload goes away …
    assert Path(second).is_file() and Path(second).parent.parent == tmp_path / "takes"  # … the take's copy stays
    assert got["pauses"] is None and "style_reference" not in got  # nothing else asked for: today's take


def test_edited_seconds_make_a_custom_pause_map_and_bad_ones_are_refused(handlers):
    seconds = [0.2, 0.5, 0.6, 1.0, 0.4, 2.0]
    got = handlers.settings(ZERO_SHOT, "", *_rows(), CUSTOM, *seconds)
    assert PauseMap.from_dict(got["pauses"]) == PauseMap(**dict(zip(MARKS, seconds, strict=True)))
    with pytest.raises(StudioError, match="between 0 and 5 seconds"):
        handlers.settings(ZERO_SHOT, "", *_rows(), CUSTOM, *seconds[:-1], 9.0)


def test_a_style_clip_not_of_the_voice_is_refused(handlers):
    with pytest.raises(StudioError, match="style clip"):
        handlers.settings(ZERO_SHOT, "/elsewhere/excited.wav", *_rows(), NO_PAUSE_MAP, *[0.1] * len(MARKS))
