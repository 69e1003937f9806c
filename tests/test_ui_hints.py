"""Errors that reach the studio's page say what to do *in the page*, in the interface language.

Every ``ui_hint`` written in the code is a plain sentence (no command line, no f-string) with a Chinese and a
Japanese text in the locale tables; errors raised by training, transcription and the SV model show that hint
in the page (never the ``--flag`` of their CLI hint), while ``str(error)`` — what the CLI prints — keeps it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio import errors as E
from studio.ui import errors as ui_errors
from studio.ui.i18n import I18n, load_locale

STUDIO = Path(__file__).resolve().parents[1] / "studio"
_UI_HINT = re.compile(r"ui_hint=\s*\(?\s*((?:[rf]?\"[^\"]*\"\s*)+)")
_COMMAND = re.compile(r"--[a-z]|\bstudio (?:prep|train|download|serve|export|import)\b|\bpip install\b")


def ui_hints_in_code() -> dict[str, Path]:
    found = {}
    for path in STUDIO.rglob("*.py"):
        for match in _UI_HINT.finditer(path.read_text(encoding="utf-8")):
            assert not match.group(1).lstrip().startswith("f"), f"{path}: a ui_hint is a table key, not an f-string"
            found["".join(re.findall(r"\"([^\"]*)\"", match.group(1)))] = path
    return found


def test_every_ui_hint_speaks_the_page_and_is_translated():
    hints = ui_hints_in_code()
    assert len(hints) >= 15  # the scan finds them (it cannot pass by finding nothing)
    speaking_cli = {h: str(p) for h, p in hints.items() if _COMMAND.search(h)}
    assert not speaking_cli, f"ui_hints that speak the command line: {speaking_cli}"
    for lang in ("zh", "ja"):
        table = load_locale(lang)
        missing = {h: str(p) for h, p in hints.items() if h not in table or table[h] == h}
        assert not missing, f"ui_hints without a {lang} text: {missing}"


@pytest.fixture
def page_in(tmp_path):
    """``present(error)`` as the page shows it, in a given language."""
    i18n = I18n()

    def show(error: E.StudioError, lang: str) -> str:
        ui_errors._context.update(t=lambda key, **fmt: i18n.t(key, lang, **fmt), roots=[(tmp_path, "")])
        title, text = ui_errors.present(error)
        return f"{title}: {text}"

    yield show
    ui_errors._context.update(t=lambda key, **fmt: key.format(**fmt) if fmt else key, roots=[])


def _raised(fn, *args, **kwargs) -> E.StudioError:
    with pytest.raises(E.StudioError) as info:
        fn(*args, **kwargs)
    return info.value


def test_training_transcription_and_sv_errors_point_into_the_page(tmp_path, page_in):
    from studio.dataprep.transcribe import resolve_asr_model
    from studio.models.speaker_verification import load_speaker_verifier
    from studio.pretrained import PretrainedAssets
    from studio.training.features import extract_features
    from studio.workspace import Workspace

    no_list = _raised(extract_features, Workspace("alice", tmp_path), PretrainedAssets(tmp_path / "pre"))
    assert "studio prep" in str(no_list)  # the CLI keeps its command
    assert "studio prep" not in page_in(no_list, "en") and "Prepare tab" in page_in(no_list, "en")
    assert "整理数据" in page_in(no_list, "zh")

    no_asr = _raised(resolve_asr_model, "small", asr_dir=tmp_path / "asr")
    assert "studio download --asr small" in str(no_asr)
    shown = page_in(no_asr, "ja")
    assert "studio download" not in shown and "モデルと設定" in shown

    no_sv = _raised(load_speaker_verifier, tmp_path / "sv" / "missing.ckpt")
    assert "studio download --version v2ProPlus" in str(no_sv)
    shown = page_in(no_sv, "zh")
    assert "studio download" not in shown and "下载缺失文件" in shown


def test_a_gpu_that_is_not_there_is_explained_without_a_flag(page_in):
    import torch

    from studio.training.job import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    error = _raised(resolve_device, "cuda")
    assert "--device cpu" in str(error) and "--device" not in page_in(error, "en")
