"""Voices tab: the library of voices; export a voice pack or the official files, import, delete.

All work is done by :class:`~studio.services.voice_packs.VoicePackService` and the voice library; the handlers
only translate between widgets and those calls.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from studio.ui.context import UIContext
from studio.ui.errors import guarded, info

HEADERS = ["Name", "Origin", "Languages", "Created", "Consent", "Reference text"]
LANGUAGES = [("Automatic", "auto"), ("English", "en"), ("Chinese", "zh"), ("Japanese", "ja")]


class VoicesHandlers:
    def __init__(self, studio, ui: UIContext) -> None:
        self.studio, self.ui = studio, ui

    def listing(self, selected: str | None = None):
        import gradio as gr

        voices = self.studio.voices.list()
        rows = [
            [
                v.name,
                self.ui.t(v.origin),
                ", ".join(v.languages),
                v.created[:10],
                "✓" if (v.consent or {}).get("confirmed") else "—",
                _shorten(v.reference_text, 80),
            ]
            for v in voices
        ]
        names = [v.name for v in voices]
        keep = selected if selected in names else (names[0] if names else None)
        table = {"headers": [self.ui.t(h) for h in HEADERS], "data": rows or [[""] * len(HEADERS)]}
        return gr.update(value=table), gr.update(choices=names, value=keep)

    def details(self, name: str | None):
        """Reference clip, description and the consent fields of the picked voice."""
        import gradio as gr

        t = self.ui.t
        if not name:
            empty = t("No voice yet. Train one (Train tab) or import a voice pack below.")
            return None, empty, gr.update(value=""), gr.update(value=""), gr.update(value=False)
        v = self.studio.voices.get(name)
        consent = v.consent or {}
        lines = [f"### {v.name}", f"{t('Reference text')}: {v.reference_text or '—'} ({v.reference_lang})"]
        summary = [f"{k.replace('_', ' ')} {val}" for k, val in v.training.items() if not isinstance(val, dict)]
        if summary:
            lines.append(f"{t('Training')}: " + ", ".join(summary))
        ref = str(v.reference_audio) if v.reference_audio.is_file() else None
        return (
            ref,
            "  \n".join(lines),
            gr.update(value=consent.get("speaker_name", "")),
            gr.update(value=consent.get("statement", "")),
            gr.update(value=bool(consent.get("confirmed"))),
        )

    def describe(self, name: str | None) -> str:
        """Only the description (for a language switch: the consent fields keep what the user typed)."""
        return self.details(name)[1]

    def _consent(self, speaker: str, statement: str, confirmed: bool):
        from studio.voicepack import ConsentRecord

        if not (speaker or "").strip() and not (statement or "").strip():
            return None  # use the voice's own record
        return ConsentRecord(speaker.strip(), statement.strip(), date.today().isoformat(), bool(confirmed))

    def export_pack(self, name: str | None, speaker: str, statement: str, confirmed: bool):
        name = _need_voice(self.ui, name)
        out = Path(tempfile.mkdtemp(prefix="studio-export-")) / f"{name}.zip"
        self.studio.voice_packs.export_voice(name, out, consent=self._consent(speaker, statement, confirmed))
        info(self.ui.t("Voice pack ready: click the file to download it."))
        import gradio as gr

        return gr.update(value=str(out), visible=True)

    def export_official(self, name: str | None, speaker: str, statement: str, confirmed: bool):
        name = _need_voice(self.ui, name)
        folder = Path(tempfile.mkdtemp(prefix="studio-official-"))
        result = self.studio.voice_packs.export_voice(
            name, None, official_dir=folder, consent=self._consent(speaker, statement, confirmed)
        )
        files = [p for p in (result.official_gpt, result.official_sovits) if p is not None]
        files += sorted(p for p in folder.rglob("*.wav"))
        info(self.ui.t("Official GPT-SoVITS files ready: download them below."))
        import gradio as gr

        return gr.update(value=[str(p) for p in files], visible=True)

    def import_files(self, files: list | None, name: str, ref_text: str, ref_lang: str):
        from studio.errors import VoicePackError

        if not files:
            raise VoicePackError(self.ui.t("Choose a voice pack (.zip) or the official .ckpt and .pth files first."))
        paths = [Path(getattr(f, "name", f)) for f in files]
        voice = self.studio.voice_packs.import_voice(
            paths if len(paths) > 1 else paths[0],
            name=(name or "").strip() or None,
            reference_text=(ref_text or "").strip() or None,
            reference_lang=ref_lang if ref_text else None,
        )
        info(self.ui.t("Imported voice {name}.", name=voice.name))
        return (*self.listing(voice.name), None, self.ui.bump_library())

    def ask_delete(self, name: str | None):
        import gradio as gr

        name = _need_voice(self.ui, name)
        msg = self.ui.t(
            "Delete the voice **{name}** for good? Its files are removed; this cannot be undone.", name=name
        )
        return gr.update(visible=True), msg

    def delete(self, name: str | None):
        import gradio as gr

        name = _need_voice(self.ui, name)
        self.studio.voices.delete(name)
        info(self.ui.t("Deleted voice {name}.", name=name))
        return (*self.listing(None), gr.update(visible=False), self.ui.bump_library())


def _shorten(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _need_voice(ui: UIContext, name: str | None) -> str:
    from studio.errors import StudioError

    if not name:
        raise StudioError(ui.t("Pick a voice in the list first."))
    return name


def build_voices_tab(studio, ui: UIContext) -> None:
    import gradio as gr

    h = VoicesHandlers(studio, ui)
    ui.tr(gr.Markdown("Your voices. Pick one to listen to its reference, export it, or delete it."))
    table = ui.tr(gr.Dataframe(headers=HEADERS, interactive=False, label="Voice library", elem_id="voices-table"))
    with gr.Row():
        with gr.Column(scale=1):
            pick = ui.tr(gr.Dropdown(label="Voice", choices=[], elem_id="voices-pick"))
            ref_audio = ui.tr(gr.Audio(label="Reference clip", interactive=False))
            details = gr.Markdown(elem_id="voices-details")
            delete_btn = ui.tr(gr.Button("Delete this voice…", variant="stop", elem_id="voices-delete"))
            with gr.Group(visible=False) as confirm_box:
                confirm_md = gr.Markdown()
                with gr.Row():
                    confirm_btn = ui.tr(gr.Button("Yes, delete", variant="stop", elem_id="voices-delete-yes"))
                    cancel_btn = ui.tr(gr.Button("Cancel"))
        with gr.Column(scale=1):
            with ui.tr(gr.Accordion("Export", open=True)):
                ui.tr(gr.Markdown("Sharing a voice needs the speaker's consent: who they are and what they agreed to."))
                speaker = ui.tr(gr.Textbox(label="Speaker's name", elem_id="consent-speaker"))
                statement = ui.tr(
                    gr.Textbox(
                        label="What the speaker agreed to",
                        elem_id="consent-statement",
                        placeholder="I agree that my voice may be used and shared as this voice.",
                    )
                )
                confirmed = ui.tr(gr.Checkbox(label="I confirm the speaker gave this consent", elem_id="consent-ok"))
                with gr.Row():
                    pack_btn = ui.tr(gr.Button("Export voice pack (.zip)", variant="primary", elem_id="voices-export"))
                    official_btn = ui.tr(
                        gr.Button("Export official GPT-SoVITS files", elem_id="voices-export-official")
                    )
                # shown once there is something to download (an empty file box only looks like an upload field)
                pack_file = ui.tr(
                    gr.File(label="Voice pack", interactive=False, elem_id="voices-pack-file", visible=False)
                )
                official_files = ui.tr(
                    gr.File(label="Official files", file_count="multiple", interactive=False, visible=False)
                )
            with ui.tr(gr.Accordion("Import", open=False)):
                upload = ui.tr(
                    gr.File(
                        label="Voice pack (.zip), or official .ckpt + .pth (+ a reference clip)",
                        file_count="multiple",
                        elem_id="voices-upload",
                        file_types=[".zip", ".ckpt", ".pth", ".wav", ".flac", ".mp3", ".ogg"],
                    )
                )
                new_name = ui.tr(gr.Textbox(label="Name for the imported voice (optional)"))
                imp_text = ui.tr(gr.Textbox(label="What the reference clip says (optional)"))
                imp_lang = ui.tr(gr.Dropdown(label="Language of the reference", choices=LANGUAGES, value="auto"))
                import_btn = ui.tr(gr.Button("Import", elem_id="voices-import"))

    consent_in = [pick, speaker, statement, confirmed]
    listing_out = [table, pick]
    pick.change(guarded(h.details), pick, [ref_audio, details, speaker, statement, confirmed], show_progress="hidden")
    pack_btn.click(guarded(h.export_pack), consent_in, pack_file)
    official_btn.click(guarded(h.export_official), consent_in, official_files)
    import_btn.click(
        guarded(h.import_files), [upload, new_name, imp_text, imp_lang], [*listing_out, upload, ui.library_changed]
    )
    delete_btn.click(guarded(h.ask_delete), pick, [confirm_box, confirm_md])
    cancel_btn.click(lambda: gr.update(visible=False), None, confirm_box, queue=False)
    confirm_btn.click(guarded(h.delete), pick, [*listing_out, confirm_box, ui.library_changed])
    ui.library_changed.change(guarded(h.listing), pick, listing_out)
    ui.on_load(h.listing, None, listing_out)
    ui.on_language(h.listing, pick, listing_out)
    ui.on_language(h.describe, pick, details)
