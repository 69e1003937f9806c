"""The take's clickable transcript and its subtitle downloads (under the selected take in the Synthesize tab).

Each word is a ``<span data-word-start="…">``; one delegated click listener (installed by :data:`INSTALL_JS`, an
inline script on the take picker's change event: no external script) seeks the take's player to the word.
Gradio 5's player is a WaveSurfer waveform whose ``<audio>`` element is not in the page, so the seek is a
click on the waveform at the word's share of the take's length, exactly what a listener's own click does.
"""

from __future__ import annotations

import html
from pathlib import Path

from studio.services.takes import Take

PLAYER_ID = "synth-take-audio"
WORDS_ID = "synth-take-words"

# ``(take) => take``: runs in the page before the handler; installs the listener once per page
INSTALL_JS = """
(take) => {
  if (window.studioWordSeek) return take;
  window.studioWordSeek = true;
  const wrapperIn = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const inner = el.shadowRoot && (el.shadowRoot.querySelector('.wrapper') || wrapperIn(el.shadowRoot));
      if (inner) return inner;
    }
    return null;
  };
  document.addEventListener('click', (event) => {
    const word = event.target.closest ? event.target.closest('[data-word-start]') : null;
    const box = word && word.closest('[data-take-duration]');
    const player = document.getElementById('%PLAYER%');
    if (!word || !box || !player) return;
    const share = parseFloat(word.dataset.wordStart) / parseFloat(box.dataset.takeDuration);
    const wave = wrapperIn(player);
    if (!wave) return;
    const rect = wave.getBoundingClientRect();
    const x = rect.left + rect.width * Math.min(Math.max(share, 0), 1);
    wave.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: rect.top + 1, bubbles: true}));
    document.querySelectorAll('#%WORDS% .take-word').forEach((w) => { w.style.background = ''; });
    word.style.background = 'var(--color-accent-soft)';
  });
  return take;
}
""".replace("%PLAYER%", PLAYER_ID).replace("%WORDS%", WORDS_ID)


def transcript_html(take: Take | None, t) -> str:
    """The words as spans with their times (``t`` translates the hint shown when there are none)."""
    if take is None:
        return ""
    if not take.words:
        return f"<p class='take-words-missing'>{html.escape(t('Word timing appears once the take is checked.'))}</p>"
    spans = []
    for w in take.words:
        title = f"{w.start:.2f}–{w.end:.2f} s"
        spans.append(
            f"<span class='take-word' style='cursor:pointer' data-word-start='{w.start:.3f}' title='{title}'>"
            f"{html.escape(w.word)}</span>"
        )
    sep = "" if all(len(w.word) <= 2 for w in take.words) else " "  # characters (zh/ja) join without spaces
    hint = html.escape(t("Click a word to hear the take from there."))
    return (
        f"<div data-take-duration='{take.duration_s:.3f}'><p class='take-words-hint'>{hint}</p>"
        f"<p class='take-words'>{sep.join(spans)}</p></div>"
    )


def subtitle_files(take: Take | None) -> tuple[str | None, str | None]:
    """The take's SRT and VTT files, where they exist (written when the take was checked)."""
    if take is None:
        return None, None
    paths = [take.subtitle_path(ext) for ext in ("srt", "vtt")]
    srt, vtt = (str(p) if Path(p).is_file() else None for p in paths)
    return srt, vtt


def build_transcript(ui):
    """Components under the take's player: the transcript and two download buttons."""
    import gradio as gr

    words = gr.HTML(elem_id=WORDS_ID)
    with gr.Row():
        srt = ui.tr(gr.DownloadButton("Subtitles (SRT)", visible=False, size="sm", elem_id="synth-take-srt"))
        vtt = ui.tr(gr.DownloadButton("Subtitles (WebVTT)", visible=False, size="sm", elem_id="synth-take-vtt"))
    return words, srt, vtt


def show(store, ui, take_id: str | None):
    """Handler: transcript HTML and the two downloads of the picked take."""
    import gradio as gr

    take = store.get(take_id) if take_id else None
    srt, vtt = subtitle_files(take)
    return (
        transcript_html(take, ui.t),
        gr.update(value=srt, visible=srt is not None),
        gr.update(value=vtt, visible=vtt is not None),
    )
