"""SoVITSSynthesizer: semantic tokens + phones + reference spectrogram(s) -> 32 kHz waveform.

Shape legend: B batch, D_ssl SSL dim (768), T_ssl 50 Hz SSL frames, T_sem 25 Hz semantic tokens,
Q codebooks, T_text phones, F spectrogram bins, T_spec spectrogram frames, O inter channels,
G gin channels, H MRTE hidden channels, E speaker-verification embedding width (20480),
T = 2·T_sem latent frames (T' after speed change).

Stages, each callable on its own (the goldens test them one by one):
``extract_latent`` (SSL -> codes), ``reference_style`` (spectrograms [+ SV embeddings] -> ge),
``prior_style`` (ge -> the vector MRTE adds), ``semantic_to_content`` (codes -> 50 Hz content),
``prior`` (enc_p), ``flow``, ``dec``; ``decode`` chains them.
Training pieces (posterior encoder, random slicing) live in ``forward_train``.

Speaker verification (config ``sv_dim`` > 0, upstream v2Pro/v2ProPlus): each reference contributes
``prelu(ref_enc(spec) + sv_emb(embedding))``; several references are averaged after the PReLU. Flow and
decoder read that ge (G channels); MRTE reads ``ge_to512(ge)`` (H channels), since G ≠ H there.
Without it (v1/v2) ge feeds all three and G must equal H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.errors import ReferenceAudioError
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.flow import ResidualCouplingBlock
from studio.models.sovits.generator import Generator
from studio.models.sovits.layers import sequence_mask
from studio.models.sovits.posterior_encoder import PosteriorEncoder
from studio.models.sovits.quantizer import ResidualVectorQuantizer
from studio.models.sovits.reference_encoder import MelStyleEncoder
from studio.models.sovits.text_encoder import TextEncoder


@dataclass
class PriorOutput:
    """Output of the prior path for one decode call (all (B, O, T'), mask (B, 1, T'))."""

    m_p: torch.Tensor
    logs_p: torch.Tensor
    mask: torch.Tensor
    ge: torch.Tensor  # (B, G, 1), what flow and decoder read


@dataclass
class TrainOutput:
    wav_slice: torch.Tensor  # (B, 1, segment_size · samples_per_frame)
    slice_starts: torch.Tensor  # (B,) start frame of each slice
    mask: torch.Tensor  # (B, 1, T_spec)
    z: torch.Tensor
    z_p: torch.Tensor
    m_p: torch.Tensor
    logs_p: torch.Tensor
    m_q: torch.Tensor
    logs_q: torch.Tensor
    quantized: torch.Tensor  # (B, D_ssl, T_spec)


class SoVITSSynthesizer(nn.Module):
    def __init__(self, config: SoVITSConfig, with_posterior_encoder: bool = True) -> None:
        super().__init__()
        if config.resblock != "1":
            raise ValueError(f"only resblock '1' is implemented, got {config.resblock!r}")
        if config.semantic_frame_rate != "25hz":
            raise ValueError(f"only the 25hz semantic frame rate is implemented, got {config.semantic_frame_rate!r}")
        if not config.uses_speaker_verification and config.gin_channels != config.mrte_hidden_channels:
            raise ValueError(
                f"without a speaker-verification input MRTE adds ge directly, so gin_channels ({config.gin_channels})"
                f" must equal mrte_hidden_channels ({config.mrte_hidden_channels})"
            )
        c = self.config = config
        # Module order = official state-dict order (enc_p, dec, enc_q, flow, ref_enc, ssl_proj, quantizer).
        self.enc_p = TextEncoder(c)
        self.dec = Generator(
            c.inter_channels,
            c.resblock_kernel_sizes,
            c.resblock_dilation_sizes,
            c.upsample_rates,
            c.upsample_initial_channel,
            c.upsample_kernel_sizes,
            gin_channels=c.gin_channels,
        )
        self.enc_q: PosteriorEncoder | None = None
        if with_posterior_encoder:
            self.enc_q = PosteriorEncoder(
                c.spec_channels,
                c.inter_channels,
                c.hidden_channels,
                c.posterior_kernel_size,
                1,
                c.posterior_n_layers,
                gin_channels=c.gin_channels,
            )
        self.flow = ResidualCouplingBlock(
            c.inter_channels,
            c.hidden_channels,
            c.flow_kernel_size,
            1,
            c.flow_n_layers,
            c.flow_n_flows,
            gin_channels=c.gin_channels,
        )
        self.ref_enc = MelStyleEncoder(
            c.ref_enc_in_bins, c.gin_channels, c.style_hidden, c.style_kernel_size, c.style_heads
        )
        self.ssl_proj = nn.Conv1d(c.ssl_dim, c.ssl_dim, 2, stride=2)
        self.quantizer = ResidualVectorQuantizer(c.ssl_dim, c.codebook_size, c.n_codebooks)
        if c.uses_speaker_verification:  # v2Pro/v2ProPlus; registered last, as in the official key order
            self.sv_emb = nn.Linear(c.sv_dim, c.gin_channels)
            self.ge_to512 = nn.Linear(c.gin_channels, c.mrte_hidden_channels)
            self.prelu = nn.PReLU(num_parameters=c.gin_channels)

    # ------------------------------------------------------------------ inference stages
    @torch.no_grad()
    def extract_latent(self, ssl: torch.Tensor) -> torch.Tensor:
        """SSL features (B, D_ssl, T_ssl) at 50 Hz -> semantic codes (Q, B, T_ssl // 2) at 25 Hz."""
        return self.quantizer.encode(self.ssl_proj(ssl))

    def reference_style(
        self,
        specs: torch.Tensor | list[torch.Tensor],
        sv_emb: torch.Tensor | list[torch.Tensor] | None = None,
        weights: list[float] | tuple[float, ...] | None = None,
    ) -> torch.Tensor:
        """Linear spectrogram(s) (B, F, T_spec) [+ one SV embedding (B, E) per spectrogram] -> ge (B, G, 1).

        A list gives the mean of the per-reference vectors (upstream's multi-reference timbre); ``weights``
        (one per spectrogram, ≥ 0, not all 0) make it ge = Σ wᵢ·geᵢ / Σ wᵢ, a timbre mix. With an SV input
        each geᵢ is already ``prelu(ref_enc + sv_emb)``: the weighting happens after the PReLU, where
        upstream averages. Equal weights take the plain mean, so they reproduce unweighted numbers bit for bit.
        A model with a speaker-verification input refuses to run without the embeddings (it would silently
        sound like another speaker otherwise).
        """
        spec_list = list(specs) if isinstance(specs, (list, tuple)) else [specs]
        if not spec_list:
            raise ValueError("at least one reference spectrogram is needed")
        emb_list = self._embeddings_for(spec_list, sv_emb)
        styles = [self._reference_vector(s, e) for s, e in zip(spec_list, emb_list)]  # each (B, G, 1)
        if len(styles) == 1:
            return styles[0]
        if weights is None or len(set(float(w) for w in weights)) == 1:
            return torch.stack(styles, 0).mean(0)
        return _weighted_mean(styles, weights)

    def _embeddings_for(
        self, specs: list[torch.Tensor], sv_emb: torch.Tensor | list[torch.Tensor] | None
    ) -> list[torch.Tensor | None]:
        if not self.config.uses_speaker_verification:
            return [None] * len(specs)
        if sv_emb is None or (isinstance(sv_emb, (list, tuple)) and not sv_emb):
            raise ReferenceAudioError(
                f"This SoVITS {self.config.version} model needs a speaker-verification embedding for each "
                "reference clip, and none was given.",
                hint="Compute it from the reference audio with the speaker-verification model (ERes2NetV2).",
            )
        embs = list(sv_emb) if isinstance(sv_emb, (list, tuple)) else [sv_emb]
        if len(embs) != len(specs):
            raise ReferenceAudioError(
                f"{len(specs)} reference spectrogram(s) but {len(embs)} speaker-verification embedding(s); "
                "each reference clip needs its own."
            )
        for emb in embs:
            if emb.size(-1) != self.config.sv_dim:
                raise ReferenceAudioError(
                    f"speaker-verification embedding of width {emb.size(-1)}; this model expects {self.config.sv_dim}."
                )
        return embs

    def style_from_spectrogram(self, spec: torch.Tensor) -> torch.Tensor:
        """The style encoder alone: spectrogram (B, F, T_spec) -> (B, G, 1) (the ge of v1/v2)."""
        lengths = torch.full((spec.size(0),), spec.size(2), dtype=torch.long, device=spec.device)
        mask = sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)  # (B, 1, T_spec)
        return self.ref_enc(spec[:, : self.config.ref_enc_in_bins] * mask, mask)

    def _reference_vector(self, spec: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        return self._with_speaker(self.style_from_spectrogram(spec), emb)

    def _with_speaker(self, ge: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """ge (B, G, 1) + SV embedding (B, E) -> prelu(ge + sv_emb(emb)) (B, G, 1); no embedding: ge."""
        if emb is None:
            return ge
        emb = emb.reshape(-1, emb.size(-1)).to(ge.dtype)  # (B, E)
        return self.prelu(ge + self.sv_emb(emb).unsqueeze(-1))

    def prior_style(self, ge: torch.Tensor) -> torch.Tensor:
        """ge (B, G, 1) -> the style vector MRTE adds (B, H, 1): ``ge_to512(ge)`` with an SV input, else ge."""
        if not self.config.uses_speaker_verification:
            return ge
        return self.ge_to512(ge.transpose(1, 2)).transpose(1, 2)

    def semantic_to_content(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (Q, B, T_sem) -> content (B, D_ssl, 2·T_sem): codebook lookup, nearest ×2 upsampling."""
        quantized = self.quantizer.decode(codes)  # (B, D_ssl, T_sem)
        return F.interpolate(quantized, size=quantized.shape[-1] * 2, mode="nearest")

    def prior(
        self,
        codes: torch.Tensor,
        phone_ids: torch.Tensor,
        ge: torch.Tensor,
        speed: float = 1.0,
    ) -> PriorOutput:
        """codes (Q, B, T_sem), phone_ids (B, T_text), ge (B, G, 1) -> m_p, logs_p (B, O, T')."""
        content = self.semantic_to_content(codes)  # (B, D_ssl, T)
        b = content.size(0)
        content_lengths = torch.full((b,), content.size(2), dtype=torch.long, device=content.device)
        text_lengths = torch.full((b,), phone_ids.size(-1), dtype=torch.long, device=phone_ids.device)
        style = self.prior_style(ge)  # (B, H, 1)
        _, m_p, logs_p, mask = self.enc_p(content, content_lengths, phone_ids, text_lengths, style, speed)
        return PriorOutput(m_p=m_p, logs_p=logs_p, mask=mask, ge=ge)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        phone_ids: torch.Tensor,
        refer_specs: torch.Tensor | list[torch.Tensor],
        noise_scale: float = 0.5,
        speed: float = 1.0,
        generator: torch.Generator | None = None,
        sv_emb: torch.Tensor | list[torch.Tensor] | None = None,
        noise: torch.Tensor | None = None,
        weights: list[float] | tuple[float, ...] | None = None,
    ) -> torch.Tensor:
        """Synthesize: codes (Q, B, T_sem), phone_ids (B, T_text), reference spectrogram(s) (B, F, T_spec)
        -> wav (B, 1, T'·samples_per_frame); T' = 2·T_sem at speed 1, else int(2·T_sem / speed) + 1.

        ``sv_emb``: one speaker-verification embedding (B, E) per reference, needed (and only used) when the
        model has an SV input. ``noise``: a given ε (B, O, T') instead of a fresh draw (replays a recorded run).
        ``weights``: one per reference, a weighted timbre mix (see :meth:`reference_style`).
        """
        ge = self.reference_style(refer_specs, sv_emb, weights)
        prior = self.prior(codes, phone_ids, ge, speed)
        z_p = self.sample_prior(prior, noise_scale, generator, noise)
        z = self.flow(z_p, prior.mask, g=ge, reverse=True)  # (B, O, T')
        return self.dec(z * prior.mask, g=ge)

    @staticmethod
    def sample_prior(
        prior: PriorOutput,
        noise_scale: float,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z_p = m_p + ε·exp(logs_p)·noise_scale with ε ~ N(0, 1) (or ε = ``noise`` when given)."""
        if noise_scale == 0:
            return prior.m_p.clone()
        if noise is None:
            noise = torch.randn(prior.m_p.shape, generator=generator, dtype=prior.m_p.dtype, device=prior.m_p.device)
        elif noise.shape != prior.m_p.shape:
            raise ValueError(f"noise of shape {tuple(noise.shape)}; the prior has {tuple(prior.m_p.shape)}")
        return prior.m_p + noise.to(prior.m_p) * torch.exp(prior.logs_p) * noise_scale

    # ------------------------------------------------------------------ training
    def forward_train(
        self,
        ssl: torch.Tensor,
        spec: torch.Tensor,
        spec_lengths: torch.Tensor,
        phone_ids: torch.Tensor,
        phone_lengths: torch.Tensor,
        sv_emb: torch.Tensor | None = None,
    ) -> TrainOutput:
        """ssl (B, D_ssl, T_ssl≈T_spec), spec (B, F, T_spec) target = reference, phones (B, T_text);
        sv_emb (B, E): each clip's speaker-verification embedding, required when the model has an SV input."""
        if self.enc_q is None:
            raise RuntimeError("this model was loaded without its posterior encoder (enc_q); it cannot be trained")
        mask = sequence_mask(spec_lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)  # (B, 1, T_spec)
        ge = self.ref_enc(spec[:, : self.config.ref_enc_in_bins] * mask, mask)  # (B, G, 1)
        ge = self._with_speaker(ge, self._embeddings_for([spec], sv_emb)[0])
        if self.config.freeze_quantizer:
            self.ssl_proj.eval()
            self.quantizer.eval()
        with torch.no_grad():
            quantized, _ = self.quantizer(self.ssl_proj(ssl))  # (B, D_ssl, T_ssl // 2)
        quantized = F.interpolate(quantized, size=quantized.shape[-1] * 2, mode="nearest")
        _, m_p, logs_p, _ = self.enc_p(quantized, spec_lengths, phone_ids, phone_lengths, self.prior_style(ge))
        z, m_q, logs_q, mask = self.enc_q(spec, spec_lengths, g=ge)
        z_p = self.flow(z, mask, g=ge)
        z_slice, starts = _random_slices(z, spec_lengths, self.config.segment_size)
        wav = self.dec(z_slice, g=ge)
        return TrainOutput(wav, starts, mask, z, z_p, m_p, logs_p, m_q, logs_q, quantized)


def _weighted_mean(styles: list[torch.Tensor], weights: list[float] | tuple[float, ...]) -> torch.Tensor:
    """Σ wᵢ·styleᵢ / Σ wᵢ over per-reference vectors, each (B, G, 1); refuses what is not a mix."""
    w = [float(x) for x in weights]
    if len(w) != len(styles):
        raise ValueError(f"{len(styles)} reference(s) but {len(w)} weight(s): give one weight per reference")
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"timbre weights must be ≥ 0 and not all 0 (got {w})")
    total = sum(w)
    stacked = torch.stack(styles, 0)  # (R, B, G, 1)
    scale = torch.tensor([x / total for x in w], dtype=stacked.dtype, device=stacked.device)  # (R,)
    return (stacked * scale.view(-1, 1, 1, 1)).sum(0)


def _random_slices(x: torch.Tensor, lengths: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of `size` frames from (B, C, T) within each item's length -> (B, C, size), starts (B,)."""
    b = x.size(0)
    max_start = (lengths - size + 1).clamp(min=1)
    starts = (torch.rand(b, device=x.device) * max_start).long()
    idx = starts.view(b, 1) + torch.arange(size, device=x.device).view(1, size)  # (B, size)
    idx = idx.clamp(max=x.size(2) - 1).unsqueeze(1).expand(-1, x.size(1), -1)
    return torch.gather(x, 2, idx), starts
