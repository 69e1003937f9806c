"""Record & Upload and Prepare tabs in a real browser: bad files give a message, not a broken page; a reload
keeps the project, its takes and its proofread list (they live in the workspace, not in the browser)."""

from __future__ import annotations

import pytest

from .conftest import open_studio

pytestmark = pytest.mark.slow


def _wait_text(page, selector: str, text: str, timeout_s: float = 30) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
        arg=[selector, text],
        timeout=timeout_s * 1000,
        polling=300,
    )


def _choose_project(page, name: str) -> None:
    picker = page.locator("#project-picker input")
    picker.fill(name)
    picker.press("Enter")
    _wait_text(page, "#rec-summary", "No takes yet")


def test_unsupported_upload_shows_a_message_and_the_page_keeps_working(webui, page, voices, screenshot):
    open_studio(page, webui.url)
    _choose_project(page, "bad-files")
    bad = [voices / "bad" / "not_audio.wav", voices / "bad" / "silent_2s.wav"]
    good = sorted((voices / "en_joe" / "clips").glob("*.wav"))[0]
    page.locator("#rec-upload input[type=file]").set_input_files([str(p) for p in [*bad, good]])
    _wait_text(page, "#rec-summary", "1 take(s)", 60)  # the good file is kept, the bad ones are not
    toasts = page.locator(".toast-body")
    toasts.first.wait_for(state="visible", timeout=30_000)
    messages = " ".join(toasts.nth(i).inner_text() for i in range(toasts.count()))
    assert "not_audio.wav" in messages and "silent_2s.wav" in messages
    assert "Traceback" not in messages
    screenshot(page, "record_bad_upload")
    kept = sorted(p.name for p in (webui.workspace / "bad-files" / "recordings").glob("*.wav"))
    assert kept == [good.name]
    # still usable: the take plays and can be deleted
    page.locator("#rec-delete").click()
    _wait_text(page, "#rec-summary", "No takes yet")
    assert not list((webui.workspace / "bad-files" / "recordings").glob("*.wav"))


def test_reload_keeps_project_takes_and_proofread_list(webui, page, voices, screenshot):
    open_studio(page, webui.url)
    _choose_project(page, "reload-test")
    clips = sorted((voices / "en_joe" / "clips").glob("*.wav"))[:2]
    page.locator("#rec-upload input[type=file]").set_input_files([str(c) for c in clips])
    _wait_text(page, "#rec-summary", "2 take(s)", 60)

    page.get_by_role("tab", name="Prepare").click()
    page.wait_for_function("!document.querySelector('#prep-run').disabled", timeout=20_000)
    page.locator("#prep-transcribe input").uncheck()  # no speech recognition: keeps this test quick
    denoise = page.locator("#prep-denoise input[type=number]")
    denoise.fill("0.35")
    denoise.press("Enter")
    page.locator("#prep-run").click()
    _wait_text(page, "#prep-summary", "in the dataset", 120)
    first_row = page.locator("#prep-list table").last.locator("tbody tr").first
    first_row.locator("td").nth(3).click()
    page.wait_for_function("!document.querySelector('#prep-clip-text textarea').disabled", timeout=20_000)
    page.locator("#prep-clip-text textarea").fill("Typed by hand before the reload.")
    page.locator("#prep-save-text").click()
    _wait_text(page, "#prep-list", "Typed by hand before the reload.")
    page.locator("#prep-delete").click()  # delete that clip … then undo the deletion
    page.wait_for_function(
        "!(document.querySelector('#prep-list')?.innerText || '').includes('Typed by hand')", timeout=30_000
    )
    page.locator("#prep-undo").click()
    _wait_text(page, "#prep-list", "Typed by hand before the reload.")

    page.reload()
    open_studio(page, webui.url)
    assert page.locator("#project-picker input").input_value() == "reload-test"
    _wait_text(page, "#rec-summary", "2 take(s)")
    for clip in clips:
        assert clip.name in page.locator("#rec-takes").inner_text()
    page.get_by_role("tab", name="Prepare").click()
    _wait_text(page, "#prep-list", "Typed by hand before the reload.")
    _wait_text(page, "#prep-summary", "in the dataset")  # what was done, read back from the project
    assert float(page.locator("#prep-denoise input[type=number]").input_value()) == 0.35
    page.locator("#prep-run").click()  # nothing new to prepare: the corrections are kept
    _wait_text(page, "#prep-summary", "already prepared")
    _wait_text(page, "#prep-list", "Typed by hand before the reload.")
    screenshot(page, "prepare_after_reload")


def test_record_prepare_train_strings_exist_in_every_language():
    """Every key the three tabs use has English, Chinese and Japanese text (no key shows up raw in the page)."""
    import json
    import re

    from studio.services.recording import ISSUES
    from studio.ui.i18n import LOCALES_DIR
    from studio.ui.tabs import _proofread, prepare, record, train

    tables = {
        lang: {
            k: v
            for part in ("record", "prepare", "train")
            for k, v in json.loads((LOCALES_DIR / f"{part}.{lang}.json").read_text(encoding="utf-8")).items()
        }
        for lang in ("en", "zh", "ja")
    }
    assert set(tables["zh"]) == set(tables["en"]) == set(tables["ja"])
    used = set()
    for module in (record, prepare, _proofread, train):
        source = open(module.__file__, encoding="utf-8").read()
        used |= set(re.findall(r"\"@?((?:record|prepare|train)\.[a-z_.]+[a-z_])\"", source))
    used |= {f"record.issue{kind}.{code}" for code in ISSUES for kind in ("", "_short")}
    used |= {f"train.state.{s}" for s in ("pending", "running", "done", "error", "cancelled", "interrupted")}
    used |= {label for label, _ in (*prepare.LANGUAGE_CHOICES, *train.PRESET_CHOICES)}
    missing = sorted(k for k in used if k not in tables["en"])
    assert not missing, f"keys without English text: {missing}"
