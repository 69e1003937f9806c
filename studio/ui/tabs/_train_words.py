"""Train-tab texts the handlers write, in the interface language: why a run stopped (the events hold it in
English, from ``studio.training.outcome``'s templates) and the suggested consent statement."""

from __future__ import annotations

from typing import Any


def outcome_text(t: Any, reason: str) -> str:
    """``reason`` through ``train.outcome.<key>`` when it is one of the outcome templates, else as written."""
    from studio.training.outcome import parse_outcome

    found = parse_outcome(reason)
    if found is None:
        return reason
    key, params = found
    if "why" in params:
        params = {**params, "why": t(f"train.outcome.why.{params['why']}")}
    return t(f"train.outcome.{key}", **params)


def statement_in_language(ui: Any, t: Any, shown: str | None) -> Any:
    """After a language switch: the suggested statement in the new language, unless the box holds the user's
    own words (then it is left alone)."""
    import gradio as gr

    i18n = getattr(ui, "i18n", None)
    defaults = {i18n.t("train.statement_default", lang).strip() for lang in i18n.tables} if i18n else set()
    return t("train.statement_default") if (shown or "").strip() in defaults | {""} else gr.update()
