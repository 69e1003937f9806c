"""What the Script tab shows, in the interface language: the parse result, the progress line, the line table and
the takes of a line. Pure functions of the services' records (no Gradio), so they are cheap to call on every tick.
"""

from __future__ import annotations

import html
from typing import Any

from studio.ui.tabs._shared import fmt_seconds, tr

MAX_SPEAKERS = 6  # speakers cast by name in the page; any further ones take the "everyone else" voice
TEXT_PREVIEW = 60
COLUMNS = (
    "script.col.n",
    "script.col.speaker",
    "script.col.voice",
    "script.col.status",
    "script.col.why",
    "script.col.text",
)


def parse_error_text(ui: Any, exc: Any) -> str:
    """A :class:`ScriptError` as "**Cannot read the script** — line 2, column 7: …" in the interface language."""
    message = str(getattr(exc, "message", exc))
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    for prefix in (f"line {line}, column {column}: ", f"line {line}: "):
        message = message.removeprefix(prefix)  # the parser's own English "where"; said in words below
    hint = getattr(exc, "hint", None)
    message = f"{message} {hint}" if hint else message
    if line is not None and column is not None:
        where = tr(ui, "script.where_column", line=line, column=column)
    elif line is not None:
        where = tr(ui, "script.where_line", line=line)
    else:
        where = ""
    body = f"{where}: {message}" if where else message
    return f"⚠ **{tr(ui, 'script.cannot_read')}** — {html.escape(body, quote=False)}"


def parsed_text(ui: Any, script: Any) -> str:
    speakers = script.speakers
    text = tr(ui, "script.parsed", lines=len(script.lines), n=len(speakers), names=", ".join(speakers))
    if len(speakers) > MAX_SPEAKERS:
        text += " " + tr(ui, "script.more_speakers", n=MAX_SPEAKERS)
    return f"✓ {text}"


def progress_html(ui: Any, status: Any, running: bool) -> str:
    """A progress bar and one line of words: where the render is, and the time left once a line has been timed."""
    if status is None:
        return ""
    if running:
        current = next((r.index + 1 for r in status.lines if r.status == "pending"), status.done)
        if status.eta_s is None:
            words = tr(ui, "script.progress.estimating", line=current, total=status.total, done=status.done)
        else:
            eta = fmt_seconds(status.eta_s)
            words = tr(ui, "script.progress.rendering", line=current, total=status.total, done=status.done, eta=eta)
    elif status.error:
        words = tr(ui, "script.progress.failed", error=status.error)
    elif status.audio is not None:
        words = tr(
            ui,
            "script.progress.done",
            total=status.total,
            ok=status.ok,
            warned=status.warned,
            rerendered=status.rerendered,
        )
    elif status.done:
        words = tr(ui, "script.progress.stopped", done=status.done, total=status.total)
    else:
        words = tr(ui, "script.progress.none")
    bar = f'<progress value="{status.done}" max="{max(1, status.total)}"></progress>'
    return f'<div class="script-progress">{bar} <span>{html.escape(words, quote=False)}</span></div>'


def why(ui: Any, report: Any) -> str:
    """The status column's reason: the services' words, except the two states the tab names itself."""
    if report.status == "pending":
        return tr(ui, "script.waiting")
    if report.status == "unchecked":
        return tr(ui, "script.not_checked")
    return report.reason


def table(ui: Any, status: Any) -> dict:
    """The line list as a Dataframe value (headers in the interface language)."""
    rows = []
    for r in status.lines if status is not None else []:
        text = r.text if len(r.text) <= TEXT_PREVIEW else r.text[: TEXT_PREVIEW - 1] + "…"
        rows.append(
            [r.index + 1, r.speaker, r.voice + (f" · {r.style}" if r.style else ""), r.symbol, why(ui, r), text]
        )
    return {"headers": [tr(ui, c) for c in COLUMNS], "data": rows or [[""] * len(COLUMNS)]}


def line_choices(status: Any) -> list[tuple[str, int]]:
    out = []
    for r in status.lines if status is not None else []:
        text = r.text if len(r.text) <= 50 else r.text[:49] + "…"
        out.append((f"{r.index + 1} · {r.symbol} {r.speaker}: {text}", r.index))
    return out


def take_choices(ui: Any, report: Any) -> list[tuple[str, int]]:
    """The tries of a line, the kept one said so, each with what its check measured."""
    out = []
    for i, attempt in enumerate(report.tries if report is not None else []):
        key = "script.take_kept" if i == report.chosen else "script.take"
        label = tr(ui, key, n=i + 1, seed=attempt.seed)
        if attempt.cer is not None:
            label += f" · CER {attempt.cer:.2f}"
        out.append((label, i))
    return out


def signature(status: Any, running: bool) -> str:
    """Changes whenever anything the tab shows changes (so an unchanged tick repaints nothing)."""
    if status is None:
        return ""
    lines = ";".join(f"{r.status}{r.attempts}{r.chosen}{r.hash}{r.start_s}" for r in status.lines)
    return f"{running}|{status.state}|{status.done}|{status.error}|{status.audio}|{lines}"
