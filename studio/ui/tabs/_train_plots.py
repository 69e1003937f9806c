"""The Train tab's live curves in words: one plot for the GPT loss, one for its accuracy (a 0–100 % scale
does not share an axis with a loss), one for the SoVITS losses; series and axis names come from the locale
tables instead of the trainers' keys (``top3_acc``, ``loss_g`` …)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.ui.tabs._shared import widget

# plot → (stage, {loss key: locale key of its series name}, y scale)
PLOTS = {
    "gpt": ("gpt", {"loss": "train.series.gpt_loss"}, 1.0),
    "accuracy": ("gpt", {"top3_acc": "train.series.top3_acc"}, 100.0),
    "sovits": (
        "sovits",
        {
            "mel": "train.series.mel",
            "kl": "train.series.kl",
            "fm": "train.series.fm",
            "gen": "train.series.gen",
            "loss_g": "train.series.loss_g",
            "loss_d": "train.series.loss_d",
        },
        1.0,
    ),
}


def curve_frame(events: list, plot: str, t: Any) -> Any:
    """Long-format (step, value, series) rows of one plot's series, for a ``gr.LinePlot``; None when empty
    (Gradio fixes a plot's column types from its first value, so an empty frame is never sent)."""
    import pandas as pd

    stage, series, scale = PLOTS[plot]
    rows = []
    for e in events:
        if e.kind == "step" and e.stage == stage and e.step is not None:
            for key, name in series.items():
                value = (e.losses or {}).get(key)
                if value is not None:
                    rows.append({"step": int(e.step), "value": float(value) * scale, "series": t(name)})
    return pd.DataFrame(rows) if rows else None


def curve_plot(ui: Any, label: str, y_title: str, elem_id: str) -> Any:
    return widget(
        ui,
        gr.LinePlot,
        value=None,
        x="step",
        y="value",
        color="series",
        label=label,
        x_title="@train.axis_step",
        y_title=y_title,
        elem_id=elem_id,
    )
