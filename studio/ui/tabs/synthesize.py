"""Synthesize tab: pick a voice, type text, generate N takes, hear the best one, compare two blindly.

Handlers (top) are plain functions over the :class:`~studio.services.takes.TakeService`; the layout (bottom)
only places components and wires events. Takes and A/B trials live in ``<workspace>/takes``, so the history
and an unfinished comparison come back after a reload.
"""

from __future__ import annotations

from studio.services.takes import ZERO_SHOT, Take, TakeNotFoundError, TakeSettings
from studio.ui.context import MODEL_QUEUE, UIContext
from studio.ui.errors import guarded, info
from studio.ui.tabs import _direction as direction
from studio.ui.tabs import take_transcript as transcript
from studio.ui.tabs._reference_trim import (
    build_delete_confirmation,
    build_reference_trim,
    reference_problem,
    wire_delete,
)

LANGUAGES = [("Automatic", "auto"), ("English", "en"), ("Chinese", "zh"), ("Japanese", "ja")]
# short columns that fit half of a 1400 px window; the take's own panel shows the details (seed, flags, transcript)
HISTORY_HEADERS = ["#", "Voice", "Text", "Length", "Misheard", "Match", "Check", "Wins"]
HISTORY_WIDTHS = ["5%", "13%", "30%", "10%", "12%", "10%", "10%", "10%"]
HISTORY_HELP = (
    "Check: ✓ no problem found, ⚠ 2 = two problems (pick the take below to see them). "
    "Misheard: how much of the text the automatic check heard wrongly (lower is better). "
    "Match: how close the voice is to the reference (1 = the same). Wins: how often you chose it in a blind A/B."
)
MAX_ROWS = 200
SPLIT_CHOICES = [
    ("Every four sentences", "cut1"),
    ("At every punctuation mark", "cut5"),
    ("About every 50 characters", "cut2"),
    ("At Chinese full stops (。)", "cut3"),
    ("At English full stops (.)", "cut4"),
    ("Do not cut", "cut0"),
]
ZERO_SHOT_LABEL = "Zero-shot from any clip (base models)"


# ------------------------------------------------------------------------------------------------ handlers


class SynthesizeHandlers:
    def __init__(self, studio, ui: UIContext) -> None:
        self.studio, self.ui = studio, ui
        self.direction = direction.DirectionHandlers(studio, ui)

    @property
    def store(self):
        return self.studio.takes.store

    def voice_choices(self) -> list[tuple[str, str]]:
        voices = self.studio.voices
        library = [(f"{v.name} · {voices.model_version(v)}", v.name) for v in voices.list()]  # "alice · v2ProPlus"
        return [(self.ui.t(ZERO_SHOT_LABEL), ZERO_SHOT), *library]

    def refresh_voices(self, current: str | None):
        import gradio as gr

        choices = self.voice_choices()
        value = current if current in {c[1] for c in choices} else ZERO_SHOT
        return gr.update(choices=choices, value=value)

    def pick_voice(self, voice: str):
        """A library voice brings its own reference clip and transcript; zero-shot keeps what the user gave."""
        import gradio as gr

        if not voice:
            return gr.update(), gr.update(), gr.update()
        info_ = self.studio.voices.get(voice)
        ref = str(info_.reference_audio) if info_.reference_audio.is_file() else None
        return gr.update(value=ref), gr.update(value=info_.reference_text), gr.update(value=info_.reference_lang)

    def readiness(self, voice: str, ref_audio: str | None, text: str):
        """Enable Generate only when it can work, and say what is missing."""
        import gradio as gr

        t = self.ui.t
        assets = self.studio.pretrained
        missing = assets.missing() if voice == ZERO_SHOT and not assets.best_base() else []
        if missing:
            reason = t("Base model files are missing: open Models & Settings to download them.")
        elif voice == ZERO_SHOT and not ref_audio:
            reason = t("Add a reference clip (3–10 s of the voice), or pick a voice from your library.")
        elif problem := reference_problem(self.ui, ref_audio):  # said now, not after Generate
            reason = problem
        elif not (text or "").strip():
            reason = t("Type the text to speak.")
        else:
            return gr.update(interactive=True), t("Ready: press Generate. Each take is checked automatically.")
        return gr.update(interactive=False), f"⚠ {reason}"

    def reading(self, text: str, lang: str, split: str | None = None) -> str:
        """How the text will be read: sentences, language runs, spelled-out numbers and phones."""
        from studio.text.reading import read_text

        lexicon = self.studio.pronunciations.lexicon()
        readings = read_text(text or "", lang or "auto", split or TakeSettings.split, lexicon=lexicon)
        t, blocks = self.ui.t, []
        for i, reading in enumerate(readings, 1):
            lines = [f"**{i}.** {reading.sentence.strip()}"]
            for seg in reading.segments:
                lines.append(f"- `{seg.lang}` {seg.norm_text.strip()}  \n  `{' '.join(seg.phones)}`")
            blocks.append("\n".join(lines))
        head = t(
            "{n} sentence(s), {p} phones. Numbers and symbols are spelled out as shown.",
            n=len(readings),
            p=sum(len(r.phones) for r in readings),
        )
        return head + "\n\n" + "\n\n".join(blocks)

    def _note(self, note: str) -> str:
        """Why a measure is missing (stored in English with the take): its lead-in in the interface language."""
        for lead in ("Transcript unavailable: ", "Speaker similarity unavailable: "):
            if note.startswith(lead):
                return self.ui.t(lead + "{reason}", reason=note[len(lead) :])
        return note

    def label(self, take: Take) -> str:
        """``#3 · voice · seed 42`` in the interface language (the store's ``Take.label`` is English)."""
        voice = take.settings.voice
        shown = self.ui.t("zero-shot") if voice in (None, "", ZERO_SHOT) else voice
        return self.ui.t("synthesize.take_label", number=take.number, voice=shown, seed=take.seed)

    def _rows(self, takes: list[Take]) -> dict:
        wins = self.store.wins()
        rows = []
        for take in takes[:MAX_ROWS]:
            qa = take.qa
            voice = take.settings.voice
            rows.append(
                [
                    take.number,
                    self.ui.t("zero-shot") if voice in (None, "", ZERO_SHOT) else voice,
                    _shorten(take.settings.text, 160),  # wrapped in its column, not cut to a word or two
                    f"{take.duration_s:.1f} s",
                    "—" if qa is None or qa.cer is None else f"{qa.cer:.0%}",
                    "—" if qa is None or qa.similarity is None else f"{qa.similarity:.2f}",
                    "—" if qa is None else (f"⚠ {len(qa.flags)}" if qa.flags else "✓"),
                    wins.get(take.id, 0),
                ]
            )
        return {"headers": [self.ui.t(h) for h in HISTORY_HEADERS], "data": rows or [[""] * len(HISTORY_HEADERS)]}

    def table(self):
        """Only the history table (for a language switch: the pickers keep their values)."""
        return self._rows(self.store.list())

    def history(self, selected: str | None = None):
        """History table + the take pickers (listen, A/B first, A/B second)."""
        import gradio as gr

        takes = self.store.list()
        choices = [(self.label(t), t.id) for t in takes[:MAX_ROWS]]
        ids = [c[1] for c in choices]
        keep = selected if selected in ids else (ids[0] if ids else None)
        first, second = (ids[1], ids[0]) if len(ids) > 1 else (None, None)
        return (
            gr.update(value=self._rows(takes)),
            gr.update(choices=choices, value=keep),
            gr.update(choices=choices, value=first),
            gr.update(choices=choices, value=second),
        )

    def show_take(self, take_id: str | None):
        if not take_id:
            return None, self.ui.t("Generate a take, then pick it here to listen and see its check.")
        take = self.store.get(take_id)
        return take.wav, self._describe(take)

    def _describe(self, take: Take) -> str:
        t, qa = self.ui.t, take.qa
        lines = [f"**{self.label(take)}** — {take.duration_s:.1f} s", f"{t('Text')}: {take.settings.text}"]
        if qa is None:
            lines.append(t("Not checked."))
        else:
            if qa.transcript is not None:
                lines.append(f"{t('Heard')}: “{qa.transcript}”")
            if qa.cer is not None:
                wer = "" if qa.wer is None else t("synthesize.qa_wer", wer=f"{qa.wer:.1%}")
                lines.append(t("synthesize.qa_cer", cer=f"{qa.cer:.1%}") + wer)
            if qa.similarity is not None:
                lines.append(f"{t('Voice match')}: {qa.similarity:.2f}")
            if qa.skipped:
                lines.append(f"{t('Skipped')}: {', '.join(qa.skipped)}")
            if qa.repeated:
                lines.append(f"{t('Repeated')}: {', '.join(qa.repeated)}")
            lines += [f"⚠ {t(f)}" for f in qa.flags] + [f"ℹ {self._note(n)}" for n in qa.notes]
            if not qa.flags:
                lines.append(f"✓ {t('No problem found.')}")
        return "  \n".join(lines)

    def generate(
        self,
        voice,
        ref_audio,
        ref_text,
        ref_lang,
        text,
        lang,
        noise,
        speed,
        energy,
        temperature,
        top_k,
        top_p,
        rep,
        seed,
        max_s,
        retries,
        split,
        pause,
        n,
        check,
        *directing,  # style clip, timbre mix rows, pause preset and seconds (_direction.direction_inputs)
        progress=None,
    ):
        settings = TakeSettings(
            text=text or "",
            lang=lang or "auto",
            voice=voice or ZERO_SHOT,
            reference=ref_audio or None,
            ref_text=ref_text if (ref_text or voice == ZERO_SHOT) else None,
            ref_lang=ref_lang or "auto",
            noise_scale=noise,
            speed=speed,
            energy=energy,
            temperature=temperature,
            top_k=int(top_k),
            top_p=top_p,
            repetition_penalty=rep,
            seed=int(seed if seed is not None else -1),
            max_sentence_s=float(max_s),
            length_retries=int(retries if retries is not None else 0),
            split=split or TakeSettings.split,
            pause_s=float(pause if pause is not None else TakeSettings.pause_s),
            **self.direction.settings(voice, *directing),
        )
        service, done = self.studio.takes, []

        def on_progress(i: int, total: int, message: str) -> None:
            if progress is not None:
                progress((i, total), desc=self.ui.t(message.split(" ")[0] + " take {i} of {n}…", i=i + 1, n=total))

        for take in service.generate(settings, int(n), check=bool(check), on_progress=on_progress):
            done.append(take)
            yield (*self.history(take.id), take.wav, self._batch_summary(done, None))
        best = service.best_of(done) if check else None
        best_take = next((t for t in done if t.id == best), done[-1])
        yield (*self.history(best_take.id), best_take.wav, self._batch_summary(done, best))

    def _batch_summary(self, takes: list[Take], best: str | None) -> str:
        t = self.ui.t
        head = t("{n} take(s) ready.", n=len(takes))
        if best:
            pick = next(x for x in takes if x.id == best)
            head += " " + t("Best: {label}. Compare two takes blindly below to decide by ear.", label=self.label(pick))
        return head

    def delete_take(self, take_id: str | None):
        if not take_id:
            raise _nothing_selected(self.ui)
        self.store.delete(take_id)
        info(self.ui.t("Take deleted."))
        return self.history(None)

    # ---- blind A/B
    def ab_state(self):
        """The open comparison (survives reloads): clips, pick buttons, instructions."""
        import gradio as gr

        trial = self.store.open_trial()
        if trial is None:
            msg = self.ui.t("Pick two takes and press Start: they play as A and B in a random order.")
            off = gr.update(interactive=False)
            return None, None, off, off, off, msg
        a, b = self.store.trial_clips(trial)
        on = gr.update(interactive=True)
        return str(a), str(b), on, on, on, self.ui.t("Listen to A and B, then choose the one you prefer.")

    def ab_start(self, first: str | None, second: str | None):
        if not first or not second:
            raise _nothing_selected(self.ui)
        self.store.start_trial(first, second)
        return self.ab_state()

    def ab_pick(self, choice: str):
        trial = self.store.open_trial()
        if trial is None:
            raise _nothing_selected(self.ui)
        trial = self.store.record_pick(trial.id, choice)
        state = self.ab_state()
        import gradio as gr

        return (gr.update(), gr.update(), *state[2:5], self._reveal(trial), self.history(None)[0])

    def _reveal(self, trial) -> str:
        """Which take was A and which B, and what the listener chose."""
        t = self.ui.t
        labels = {}
        for side, take_id in (("A", trial.first), ("B", trial.second)):
            try:
                labels[side] = self.label(self.store.get(take_id))
            except TakeNotFoundError:  # deleted since: say so instead of failing
                labels[side] = t("a deleted take")
        reveal = t("A was {a}, B was {b}.", a=labels["A"], b=labels["B"])
        verdict = labels.get(trial.pick)
        reveal += " " + (t("You preferred {take}.", take=verdict) if verdict else t("No preference."))
        return f"✓ {reveal}"

    def ab_message(self) -> str:
        """The comparison text in the current language (after a language switch): the open trial's instructions,
        else the result of the last finished comparison, else how to start one."""
        message = self.ab_state()[-1]
        if self.store.open_trial() is None:
            done = [trial for trial in self.store.trials() if trial.pick is not None]
            if done:
                return self._reveal(done[-1])
        return message

    def batch_message(self) -> str:
        """The summary of the newest batch of takes, in the current language (after a language switch)."""
        takes = self.store.list()
        if not takes:
            return ""
        batch = [take for take in takes if take.batch == takes[0].batch]
        checked = all(take.qa is not None for take in batch)
        return self._batch_summary(batch, self.studio.takes.best_of(batch) if checked else None)


def _shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _nothing_selected(ui: UIContext):
    from studio.errors import StudioError

    return StudioError(ui.t("Pick two takes to compare first."))


# ------------------------------------------------------------------------------------------------ layout


def build_synthesize_tab(studio, ui: UIContext) -> None:
    import gradio as gr

    h = SynthesizeHandlers(studio, ui)
    with gr.Row():
        with gr.Column(scale=5):
            voice = ui.tr(
                gr.Dropdown(
                    label="Voice",
                    choices=[(ui.t(ZERO_SHOT_LABEL), ZERO_SHOT)],
                    value=ZERO_SHOT,
                    elem_id="synth-voice",
                    info="A voice from your library, or zero-shot: the base models copy any clip.",
                ),
                choices=False,  # refresh_voices lists them in the current language (on load and language switch)
            )
            with ui.tr(gr.Accordion("Reference clip", open=True)):
                ref_audio = ui.tr(
                    gr.Audio(
                        label="Reference clip (3–10 s)",
                        type="filepath",
                        sources=["upload", "microphone"],
                        elem_id="synth-ref-audio",
                    )
                )
                build_reference_trim(studio, ui, ref_audio)
                ref_text = ui.tr(
                    gr.Textbox(
                        label="What the reference clip says",
                        lines=2,
                        max_lines=4,
                        elem_id="synth-ref-text",
                        info="Exact words help the voice; leave empty if unknown.",
                    )
                )
                ref_lang = ui.tr(gr.Dropdown(label="Language of the reference", choices=LANGUAGES, value="auto"))
            directing = direction.build_direction(ui)  # style clip, timbre mix, pauses by punctuation
            text = ui.tr(
                gr.Textbox(
                    label="Text to speak", lines=4, elem_id="synth-text", placeholder="Type what the voice should say."
                )
            )
            lang = ui.tr(gr.Dropdown(label="Language of the text", choices=LANGUAGES, value="auto"))
            with gr.Row():
                split = ui.tr(
                    gr.Dropdown(
                        label="How to cut long text",
                        info="Each piece is generated on its own; shorter pieces are steadier.",
                        choices=SPLIT_CHOICES,
                        value=TakeSettings.split,
                        elem_id="synth-split",
                    )
                )
                pause = ui.tr(
                    gr.Slider(
                        0,
                        2,
                        TakeSettings.pause_s,
                        step=0.05,
                        label="Pause between sentences (seconds)",
                        elem_id="synth-pause",
                    )
                )
            with ui.tr(gr.Accordion("How it will be read", open=False, elem_id="synth-reading-box")):
                reading_btn = ui.tr(gr.Button("Show sentences and phones", size="sm", elem_id="synth-reading-btn"))
                reading_md = gr.Markdown(elem_id="synth-reading")
            with ui.tr(gr.Accordion("Voice settings", open=False)):
                noise = ui.tr(
                    gr.Slider(0, 1, 0.5, step=0.05, label="Noise scale", info="Lower = steadier, higher = livelier.")
                )
                speed = ui.tr(gr.Slider(0.6, 1.65, 1.0, step=0.05, label="Speed"))
                energy = ui.tr(
                    gr.Slider(0, 2, 1.0, step=0.05, label="Energy", info="Loudness contrast; 1 = unchanged.")
                )
                temperature = ui.tr(gr.Slider(0.1, 2, 1.0, step=0.05, label="Temperature"))
                top_k = ui.tr(gr.Slider(1, 100, 15, step=1, label="Top-k"))
                top_p = ui.tr(gr.Slider(0.05, 1, 1.0, step=0.05, label="Top-p"))
                rep = ui.tr(gr.Slider(1, 2, 1.35, step=0.05, label="Repetition penalty"))
                seed = ui.tr(gr.Number(-1, precision=0, label="Seed", info="-1 = a new random seed for every take."))
                max_s = ui.tr(gr.Slider(1, 60, 60, step=1, label="Longest sentence (seconds)", elem_id="synth-max-s"))
                retries = ui.tr(
                    gr.Slider(
                        0,
                        5,
                        TakeSettings.length_retries,
                        step=1,
                        label="Retries for skipped or repeated words",
                        info="A sentence far too short or too long for its text is generated again; 0 = off.",
                        elem_id="synth-retries",
                    )
                )
            with gr.Row():
                n_takes = ui.tr(gr.Slider(1, 8, 2, step=1, label="Number of takes", elem_id="synth-n"))
                check = ui.tr(gr.Checkbox(True, label="Check each take (transcribe and compare the voice)"))
            with gr.Row():
                gen_btn = ui.tr(gr.Button("Generate", variant="primary", interactive=False, elem_id="synth-generate"))
                stop_btn = ui.tr(gr.Button("Stop", variant="stop", elem_id="synth-stop"))
            readiness = gr.Markdown(elem_classes=["studio-next"], elem_id="synth-readiness")
        with gr.Column(scale=5):
            best_audio = ui.tr(gr.Audio(label="Latest / best take", interactive=False, elem_id="synth-best"))
            batch_md = gr.Markdown(elem_id="synth-batch")
            history = ui.tr(
                gr.Dataframe(
                    label="Take history",
                    interactive=False,
                    elem_id="synth-history",
                    wrap=True,
                    headers=HISTORY_HEADERS,
                    column_widths=HISTORY_WIDTHS,
                    max_height=300,
                )
            )
            ui.tr(gr.Markdown(HISTORY_HELP, elem_classes=["studio-caption"], elem_id="synth-history-help"))
            with gr.Row(equal_height=False):
                take_pick = ui.tr(gr.Dropdown(label="Listen to a take", choices=[], elem_id="synth-take", scale=4))
                del_btn = ui.tr(
                    gr.Button("Delete take", variant="secondary", scale=1, min_width=120, elem_classes=["studio-end"])
                )
            delete_parts = build_delete_confirmation(ui)
            take_audio = ui.tr(gr.Audio(label="Selected take", interactive=False, elem_id="synth-take-audio"))
            take_md = gr.Markdown(elem_id="synth-take-info")
            take_words, take_srt, take_vtt = transcript.build_transcript(ui)  # clickable words, subtitle downloads
            with ui.tr(gr.Accordion("Blind A/B comparison", open=True, elem_id="synth-ab")):
                with gr.Row():
                    ab_first = ui.tr(gr.Dropdown(label="First take", choices=[], elem_id="ab-first"))
                    ab_second = ui.tr(gr.Dropdown(label="Second take", choices=[], elem_id="ab-second"))
                ab_start = ui.tr(gr.Button("Start blind comparison", elem_id="ab-start"))
                with gr.Row():
                    audio_a = ui.tr(gr.Audio(label="A", interactive=False, elem_id="ab-a"))
                    audio_b = ui.tr(gr.Audio(label="B", interactive=False, elem_id="ab-b"))
                with gr.Row():
                    pick_a = ui.tr(gr.Button("A is better", interactive=False, elem_id="ab-pick-a"))
                    pick_same = ui.tr(gr.Button("No difference", interactive=False, elem_id="ab-pick-same"))
                    pick_b = ui.tr(gr.Button("B is better", interactive=False, elem_id="ab-pick-b"))
                ab_md = gr.Markdown(elem_id="ab-result")

    _wire(h, ui, locals())


def _wire(h: SynthesizeHandlers, ui: UIContext, c: dict) -> None:
    import gradio as gr

    ready_in, ready_out = [c["voice"], c["ref_audio"], c["text"]], [c["gen_btn"], c["readiness"]]
    for comp in ready_in:
        comp.change(guarded(h.readiness), ready_in, ready_out, queue=False, show_progress="hidden")
    c["voice"].input(guarded(h.pick_voice), c["voice"], [c["ref_audio"], c["ref_text"], c["ref_lang"]])
    c["reading_btn"].click(
        guarded(h.reading), [c["text"], c["lang"], c["split"]], c["reading_md"], show_progress="minimal"
    )
    history_out = [c["history"], c["take_pick"], c["ab_first"], c["ab_second"]]
    ab_out = [c["audio_a"], c["audio_b"], c["pick_a"], c["pick_same"], c["pick_b"], c["ab_md"]]

    def generate(*args, progress=gr.Progress()):
        yield from h.generate(*args, progress=progress)

    inputs = [
        c[k]
        for k in (
            "voice",
            "ref_audio",
            "ref_text",
            "ref_lang",
            "text",
            "lang",
            "noise",
            "speed",
            "energy",
            "temperature",
            "top_k",
            "top_p",
            "rep",
            "seed",
            "max_s",
            "retries",
            "split",
            "pause",
            "n_takes",
            "check",
        )
    ] + direction.direction_inputs(c["directing"])
    event = c["gen_btn"].click(
        guarded(generate),
        inputs,
        [*history_out, c["best_audio"], c["batch_md"]],
        concurrency_id=MODEL_QUEUE,
        concurrency_limit=1,
        # progress (and an error) on the summary line: a failed batch never hides the previous best take
        show_progress_on=[c["batch_md"]],
    )
    c["stop_btn"].click(None, None, None, cancels=[event])
    c["take_pick"].change(guarded(h.show_take), c["take_pick"], [c["take_audio"], c["take_md"]], show_progress="hidden")
    words_out = [c["take_words"], c["take_srt"], c["take_vtt"]]
    show_words = guarded(lambda take: transcript.show(h.store, ui, take))
    c["take_pick"].change(show_words, c["take_pick"], words_out, js=transcript.INSTALL_JS, show_progress="hidden")
    quick = {"show_progress": "hidden"}  # fast handlers: an error is the toast, not a badge on every output
    wire_delete(ui, c["delete_parts"], c["del_btn"], c["take_pick"], h.delete_take, history_out)
    c["ab_start"].click(guarded(h.ab_start), [c["ab_first"], c["ab_second"]], ab_out, **quick)
    for button, choice in ((c["pick_a"], "A"), (c["pick_b"], "B"), (c["pick_same"], "same")):
        button.click(guarded(lambda choice=choice: h.ab_pick(choice)), None, [*ab_out, c["history"]], **quick)
    direction.wire_direction(h.direction, ui, c["directing"], c["voice"])
    if ui.library_changed is not None:
        ui.library_changed.change(guarded(h.refresh_voices), c["voice"], c["voice"])
    ui.on_load(h.refresh_voices, c["voice"], c["voice"])
    ui.on_load(h.history, None, history_out)
    ui.on_load(h.ab_state, None, ab_out)
    ui.on_load(h.readiness, ready_in, ready_out)
    # a language switch re-renders what the handlers wrote, keeping the user's picks
    ui.on_language(h.refresh_voices, c["voice"], c["voice"])
    ui.on_language(h.table, None, c["history"])
    ui.on_language(h.readiness, ready_in, ready_out)
    ui.on_language(h.batch_message, None, c["batch_md"])
    ui.on_language(h.ab_message, None, c["ab_md"])
    ui.on_language(lambda take: h.show_take(take)[1], c["take_pick"], c["take_md"])
    ui.on_language(lambda take: transcript.show(h.store, ui, take)[0], c["take_pick"], c["take_words"])
