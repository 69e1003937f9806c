"""In 中文 and 日本語 no English text of the studio is left on any tab (one server, one browser, both languages).

The English strings are derived from the English locale tables (``studio/ui/locales/*.en.json``) and from the
lint's message table, so a new string is covered as soon as it exists; a deliberate exception (a proper noun,
a unit, an abbreviation that reads the same in every language) is listed once in ``SAME_IN_EVERY_LANGUAGE``
with its reason. Besides exact matches, any run of four English words on the page fails the test, which also
catches English written straight into the code instead of the tables.

The project shown holds Chinese clips with a short one, a clipped one, a telephone-quality one and a doubtful
transcript, so that the Prepare tab shows its table, lint findings, the picked reference and the next step;
a stopped training run gives the Train tab its curves, and a checked take the Synthesize tab its history.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.ui.i18n import load_locale

from .conftest import open_studio

pytestmark = pytest.mark.slow

#: visible English that stays English in every language, and why
SAME_IN_EVERY_LANGUAGE: dict[str, str] = {
    "A": "the two sides of the blind A/B comparison",
    "B": "the two sides of the blind A/B comparison",
    "A/B": "name of the blind comparison",
    "CER": "character error rate: the abbreviation is what the literature in every language uses",
    "WER": "word error rate: as CER",
    "Top-k": "sampling parameter name, as in every GPT-SoVITS interface",
    "Top-p": "sampling parameter name, as in every GPT-SoVITS interface",
    "Hugging Face (huggingface.co)": "a company and its address",
    "English": "a language named in its own language (script and language pickers)",
    "https://…": "an address",
    "SoVITS Studio": "the product's name",
    **{size: "a Whisper model's name, as on the hub and in `studio download --asr`" for size in ("tiny", "base")},
}
#: words that may appear in a run of Latin words without making it English prose (names, formats, units)
NAMES = {"SoVITS", "GPT", "Studio", "Hugging", "Face", "Whisper", "BERT", "HuBERT", "LoRA", "ARPAbet", "CMUdict"}
TABS = 7  # Record, Prepare, Train, Synthesize, Script, Voices, Models & Settings
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_MARKUP = re.compile(r"[*_`#>|]+|\[|\]\([^)]*\)")
_WORD_RUN = re.compile(r"[A-Za-z][A-Za-z'’]+(?:[ ,;:–]+[A-Za-z][A-Za-z'’]+){3,}")


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(" .,:;()“”\"'–-")


def english_fragments() -> tuple[set[str], set[str]]:
    """(whole strings to match a text node exactly, fragments of 3+ words to find anywhere on the page)."""
    from studio.dataprep.lint_text import english_templates
    from studio.ui.i18n import load_locale

    texts = list(load_locale("en").values()) + english_templates()
    exact, inside = set(), set()
    exempt = {_clean(s) for s in SAME_IN_EVERY_LANGUAGE}
    for text in texts:
        for piece in _PLACEHOLDER.split(_MARKUP.sub(" ", text)):
            for part in re.split(r"\n+|(?<=[.:!?])\s+|\s+[—→·]\s+", piece):
                part = _clean(part)
                if not re.search(r"[A-Za-z]{3}", part) or part in exempt:
                    continue
                exact.add(part)
                if len(re.findall(r"[A-Za-z]{2,}", part)) >= 3:
                    inside.add(part)
    return exact, inside


_VISIBLE_TEXTS = """() => {
  const out = [];
  const seen = (el) => el && el.checkVisibility && el.checkVisibility({visibilityProperty: true});
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement, text = node.textContent.trim();
    if (text && seen(el) && !el.closest('script, style, textarea, [data-testid="textbox"], .user-data')) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [aria-label], textarea, input[type=text]')) {
    if (!seen(el)) continue;
    if (el.placeholder) out.push(el.placeholder);
    if ((el.tagName === 'TEXTAREA' || el.type === 'text') && el.value) out.push(el.value);
  }
  return {nodes: out, page: document.body.innerText};
}"""


def english_on_page(page, exact: set[str], inside: set[str]) -> set[str]:
    found = page.evaluate(_VISIBLE_TEXTS)
    left = set()
    for node in found["nodes"]:
        clean = _clean(node)
        if clean in exact:
            left.add(clean)
        for run in _WORD_RUN.findall(node):
            if len([w for w in re.findall(r"[A-Za-z'’]+", run) if w not in NAMES]) >= 4:
                left.add(run)
    text = " ".join(found["page"].split())
    left.update(frag for frag in inside if frag in text)
    return left


def _zh_project(workspace: Path, voices: Path) -> None:
    """Project ``demo``: six Chinese clips, a 2 s one, a clipped one, a telephone-quality one; one doubtful."""
    from studio.corpus import DatasetEntry, write_list

    slices = workspace / "demo" / "slices"
    slices.mkdir(parents=True)
    source = voices / "zh_espeak"
    texts = dict(line.split("|")[0::3] for line in (source / "dataset.list").read_text("utf-8").splitlines())
    entries = []
    for rel, text in sorted(texts.items()):
        shutil.copyfile(source / rel, slices / Path(rel).name)
        entries.append(DatasetEntry(slices / Path(rel).name, "demo", "zh", text))
    audio, sr = sf.read(source / "clips" / "zh_espeak_000.wav")
    sf.write(slices / "short.wav", audio[: 2 * sr], sr)
    sf.write(slices / "loud.wav", np.clip(audio * 10, -1, 1), sr)
    shutil.copyfile(voices / "bad" / "8khz_8bit.wav", slices / "phone.wav")
    entries += [DatasetEntry(slices / n, "demo", "zh", "周末我打算去图书馆。") for n in ("short.wav", "loud.wav")]
    entries.append(DatasetEntry(slices / "phone.wav", "demo", "zh", "请问这是去机场的快车站台吗？"))
    write_list(workspace / "demo" / "dataset.list", entries)
    asr = {e.audio_path.name: {"text": e.text, "avg_logprob": -0.15, "language": "zh"} for e in entries}
    doubtful = entries[1].audio_path.name
    asr[doubtful].update(second_opinion=entries[1].text.replace("电脑", "电视"), words=[["硬盘", 0.1]])
    (workspace / "demo" / "reports").mkdir()
    (workspace / "demo" / "reports" / "asr.json").write_text(json.dumps(asr, ensure_ascii=False), "utf-8")


def _stopped_run(workspace: Path) -> None:
    """A run of ``demo`` that trained both stages a little and was then killed: the Train tab shows its curves."""
    from studio.training.events import EventWriter

    run = workspace / "demo" / "runs" / "20261205-000000"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}", encoding="utf-8")
    emit = EventWriter(run / "events.jsonl")
    emit("start")
    for i in range(1, 4):
        emit("step", stage="gpt", epoch=1, step=i, total_steps=3, losses={"loss": 7.0 - i, "top3_acc": 0.1 * i})
    for i in range(1, 4):
        losses = {"loss_g": 30.0 - i, "loss_mel": 20.0 - i, "loss_kl": 2.0, "loss_fm": 1.0, "loss_gen": 3.0}
        emit("step", stage="sovits", epoch=1, step=i, total_steps=9, losses={**losses, "loss_d": 4.0})
    emit("cancelled", message="stopped by the user; resume to continue from the last checkpoint")  # job.py's words


def _checked_take(studio, clip: Path) -> None:
    """One zero-shot take in the history with its automatic check (transcript, CER/WER, voice match)."""
    from studio.services.take_qa import TakeQA
    from studio.services.takes import TakeSettings

    audio, sr = sf.read(clip, dtype="float32")
    store = studio.takes.store
    take = store.add(audio, sr, settings=TakeSettings(text="周末我打算去图书馆。"), seed=7, batch="b1", reference=clip)
    store.set_qa(
        take.id,
        TakeQA(transcript="周末我打算去图书馆。", cer=0.1, wer=0.2, notes=["Speaker similarity unavailable: 无"]),
    )


@pytest.fixture(scope="module")
def zh_server(start_webui, tmp_path_factory, tiny_s1_ckpt: Path, tiny_s2_pth: Path, voices: Path):
    from studio.services.studio import Studio
    from studio.settings import StudioSettings

    workspace = tmp_path_factory.mktemp("zh-ws")
    clip = voices / "zh_espeak" / "clips" / "zh_espeak_000.wav"
    Studio(StudioSettings(workspace=workspace)).voice_packs.import_voice(
        [tiny_s1_ckpt, tiny_s2_pth, clip], name="小周", reference_text="周末我打算去图书馆。", reference_lang="zh"
    )
    _zh_project(workspace, voices)
    _checked_take(Studio(StudioSettings(workspace=workspace)), clip)
    _stopped_run(workspace)
    prefs = {"ui_language": "zh", "current_project": "demo"}
    (workspace / "settings.json").write_text(json.dumps(prefs), "utf-8")
    return start_webui(workspace)


def _open_accordions(page) -> None:
    closed = page.locator("button.label-wrap:not(.open):visible")
    for _ in range(closed.count()):
        closed.first.click()
        page.wait_for_timeout(100)


def _english_per_tab(page, exact: set[str], inside: set[str], screenshot, lang: str) -> dict[str, set[str]]:
    tabs = page.get_by_role("tab")
    left = {}
    for i in range(TABS):
        tab = tabs.nth(i)
        name = tab.inner_text()
        tab.click()
        page.wait_for_timeout(600)
        _open_accordions(page)
        page.wait_for_timeout(300)
        found = english_on_page(page, exact, inside)
        screenshot(page, f"no_english_{lang}_{i}")
        if found:
            left[name] = found
    return left


def test_no_english_left_in_chinese_and_japanese(zh_server, page, screenshot):
    exact, inside = english_fragments()
    open_studio(page, zh_server.url)
    page.get_by_role("tab").nth(1).click()  # Prepare: wait for the dataset of the project to be shown
    page.wait_for_function("document.querySelector('#prep-list')?.innerText.includes('short.wav')", timeout=60_000)
    zh = _english_per_tab(page, exact, inside, screenshot, "zh")

    page.get_by_role("tab").nth(TABS - 1).click()
    page.locator("#ui-language").get_by_text("日本語").click()
    page.get_by_role("tab", name="モデルと設定").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    ja = _english_per_tab(page, exact, inside, screenshot, "ja")
    # texts the studio suggests in a field (nothing typed yet) follow the switch too
    suggested = page.locator("#train-statement textarea").input_value()
    assert suggested == load_locale("ja")["train.statement_default"], suggested
    assert not zh and not ja, f"English left — 中文: {zh}; 日本語: {ja}"
