"""The Script tab in headless Chromium: a parse error named by its line and column, two speakers cast to two tiny
library voices, a render with the checks off (✓ rows, files on disk), a reload that finds it again, one edited line
rendered again alone (the other lines' files untouched), and the exports (SRT, WAV, a zip of the lines).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from studio.audio.io import load_audio
from studio.services.subtitles import parse_srt

from .conftest import open_studio

REF_TEXT = "Please restart the router before you call the help desk about the slow connection at home."
BAD = "ALICE: Hello there.\nBOB: Good [shout] morning!\n"
SCRIPT = "ALICE: Hello there.\nBOB: Good morning!\nALICE: See you soon.\n"
EDITED = "Good evening, everyone!"


@pytest.fixture(scope="module")
def script_server(start_webui, tmp_path_factory, tiny_s1_ckpt: Path, tiny_s2_pth: Path, voices: Path):
    """A studio whose library holds two voices made from the tiny models: 'joe' and 'ann'."""
    from studio.services.voices import VoiceInfo, VoiceLibrary

    workspace = tmp_path_factory.mktemp("script-ui-ws")
    library = VoiceLibrary(workspace)
    clips = voices / "en_joe" / "clips"
    for name in ("joe", "ann"):
        info = VoiceInfo(name, Path("."), REF_TEXT, "en", ["en"])
        library.add(info, gpt=tiny_s1_ckpt, sovits=tiny_s2_pth, reference=clips / "en_joe_000.wav")
    return start_webui(workspace)


def _digests(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted((folder / "lines").glob("*.wav"))
    }


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()
    page.wait_for_timeout(200)


def _wait_text(page, elem_id: str, *needles: str, timeout: int = 120_000) -> None:
    checks = " && ".join(f"t.includes({n!r})" for n in needles)
    page.wait_for_function(
        f"(() => {{ const t = document.querySelector('#{elem_id}')?.innerText || ''; return {checks}; }})()",
        timeout=timeout,
        polling=300,
    )


def _download(page, fmt_label: str) -> Path:
    page.locator("#script-export-format").get_by_text(fmt_label, exact=True).click()
    link = page.locator("#script-file a").first
    before = link.get_attribute("href") if link.count() else None
    page.locator("#script-export").click()
    page.wait_for_function(
        "(before) => { const a = document.querySelector('#script-file a'); return a && a.href && a.href !== before; }",
        arg=before,
        timeout=30_000,
    )
    with page.expect_download() as download:
        page.locator("#script-file a").first.click()
    return Path(download.value.path())


def _rows(page) -> list[list[str]]:
    """The line table's rows (cells' text); the data table is the last one (Gradio adds one for layout)."""
    rows = page.locator("#script-lines table").last.locator("tbody tr")
    cells = [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]
    return [c for c in cells if c and c[0].isdigit()]


def _open_tab(page, url: str) -> None:
    open_studio(page, url)
    page.get_by_role("tab", name="Script").click()
    page.wait_for_timeout(300)


def test_script_tab_renders_edits_one_line_and_exports(script_server, page, screenshot):
    _open_tab(page, script_server.url)
    text = page.locator("#script-text textarea")

    text.fill(BAD)  # a mistake is named by its line and column, in words
    page.locator("#script-read").click()
    column = BAD.splitlines()[1].index("[") + 1
    _wait_text(page, "script-parsed", f"line 2, column {column}", "[shout]", timeout=30_000)

    text.fill(SCRIPT)
    page.locator("#script-read").click()
    _wait_text(page, "script-parsed", "3 line(s), 2 speaker(s): ALICE, BOB", timeout=30_000)
    assert page.locator("#script-speaker-0 textarea, #script-speaker-0 input").first.input_value() == "ALICE"
    _choose(page, "script-voice-0", "joe")
    _choose(page, "script-voice-1", "ann")
    page.locator("#script-check input[type=checkbox]").uncheck()  # fast and deterministic: no Whisper
    page.locator("#script-seed input").fill("7")
    max_s = page.locator("#script-max-s input[type=number]")
    max_s.fill("1")
    max_s.press("Enter")

    page.locator("#script-render").click()
    _wait_text(page, "script-progress", "Rendered 3 line(s)")
    rows = _rows(page)
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        ("ALICE", "joe", "✓", "not checked"), ("BOB", "ann", "✓", "not checked"), ("ALICE", "joe", "✓", "not checked")
    ]  # fmt: skip
    folder = script_server.workspace / "scripts" / "script"
    before = _digests(folder)
    assert set(before) == {"0000.wav", "0001.wav", "0002.wav"}
    screenshot(page, "script_rendered")

    page.reload()  # the render lives in the workspace: a reload shows it again, with its script
    _open_tab(page, script_server.url)
    _wait_text(page, "script-progress", "Rendered 3 line(s)", timeout=30_000)
    assert page.locator("#script-text textarea").input_value() == SCRIPT

    _choose(page, "script-line", "2 · ✓ BOB: Good morning!")
    line_text = page.locator("#script-line-text textarea")
    page.wait_for_function("document.querySelector('#script-line-text textarea').value === 'Good morning!'")
    line_text.fill(EDITED)
    page.locator("#script-rerender").click()
    _wait_text(page, "script-lines", EDITED)
    _wait_text(page, "script-progress", "Rendered 3 line(s)")
    after = _digests(folder)
    assert after["0000.wav"] == before["0000.wav"] and after["0002.wav"] == before["0002.wav"]
    assert after["0001.wav"] != before["0001.wav"]  # only the edited line was rendered again

    cues = parse_srt(_download(page, "SRT subtitles").read_text(encoding="utf-8"))
    assert [c.text for c in cues] == ["Hello there.", EDITED, "See you soon."]
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    audio, rate = load_audio(_download(page, "WAV (lossless)"))
    assert cues[-1].end == pytest.approx(len(audio) / rate, abs=0.02)
    with zipfile.ZipFile(_download(page, "A zip of the lines (one WAV each)")) as archive:
        names = set(archive.namelist())
    assert {"0001-ALICE.wav", "0002-BOB.wav", "0003-ALICE.wav", "report.json"} <= names
    screenshot(page, "script_exported")
