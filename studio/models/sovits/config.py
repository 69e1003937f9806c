"""SoVITSConfig: every size of the SoVITS synthesizer, with named presets.

Official v1/v2/v2Pro/v2ProPlus generators differ only in sizes, so every version is a preset and the
model branches on sizes, never on a version string: v1 has a 322-row phone table and a style encoder
reading all 1025 bins; v2Pro adds a speaker-verification input (``sv_dim`` > 0: ``sv_emb``, ``prelu``,
``ge_to512``) with gin 1024 and no dropout; v2ProPlus widens the HiFiGAN (768 channels, first kernel 20).
``from_hparams`` reads the nested dict that upstream stores as ``config`` in an exported
``.pth`` (sections ``data``, ``model``, ``train``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SoVITSConfig:
    """Architecture of the SoVITS (s2) synthesizer. Defaults = official v2 (``configs/s2.json``)."""

    version: str = "v2"
    # audio framing (data section); spec_channels = filter_length // 2 + 1
    sampling_rate: int = 32000
    filter_length: int = 2048
    hop_length: int = 640
    win_length: int = 2048
    segment_size: int = 32  # training slice in spectrogram frames (train.segment_size // hop_length)
    # text/content encoder (enc_p)
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6  # encoder_text depth; encoder_ssl and encoder2 use n_layers // 2
    kernel_size: int = 3
    p_dropout: float = 0.1
    window_size: int = 4
    n_symbols: int = 732  # phone table rows: v2 732, v1 322
    # MRTE cross attention: input/output width = hidden_channels
    mrte_hidden_channels: int = 512
    mrte_n_heads: int = 4
    # SSL content + vector quantizer
    ssl_dim: int = 768
    codebook_size: int = 1024
    n_codebooks: int = 1
    semantic_frame_rate: str = "25hz"
    freeze_quantizer: bool = True
    # style (reference) encoder
    ref_enc_in_bins: int = 704  # v2 reads the first 704 linear bins, v1 all 1025
    style_hidden: int = 128
    style_heads: int = 2
    style_kernel_size: int = 5
    gin_channels: int = 512
    # speaker-verification input (v2Pro/v2ProPlus): width of the SV embedding, 0 = none (v1/v2)
    sv_dim: int = 0
    # HiFiGAN generator
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    # posterior encoder (training only) and flow
    posterior_kernel_size: int = 5
    posterior_n_layers: int = 16
    flow_kernel_size: int = 5
    flow_n_layers: int = 4
    flow_n_flows: int = 4
    # training only: periods of the multi-period discriminator
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per 50 Hz latent frame (= product of upsample rates = hop_length)."""
        out = 1
        for rate in self.upsample_rates:
            out *= rate
        return out

    @property
    def uses_speaker_verification(self) -> bool:
        """True when every reference also needs its speaker-verification embedding (v2Pro/v2ProPlus)."""
        return self.sv_dim > 0

    # ----------------------------------------------------------------------------- presets
    @classmethod
    def v2(cls) -> SoVITSConfig:
        return cls()

    @classmethod
    def v1(cls) -> SoVITSConfig:
        return cls(version="v1", n_symbols=322, ref_enc_in_bins=1025)

    @classmethod
    def v2Pro(cls) -> SoVITSConfig:
        """``configs/s2v2Pro.json``: v2 plus the 20480-d SV embedding, gin 1024, no dropout, MPD +17, 23."""
        return cls(
            version="v2Pro",
            p_dropout=0.0,
            gin_channels=1024,
            sv_dim=20480,
            mpd_periods=(2, 3, 5, 7, 11, 17, 23),
        )

    @classmethod
    def v2ProPlus(cls) -> SoVITSConfig:
        """``configs/s2v2ProPlus.json``: v2Pro with a wider HiFiGAN (768 channels, first upsampling kernel 20)."""
        return replace(
            cls.v2Pro(), version="v2ProPlus", upsample_initial_channel=768, upsample_kernel_sizes=(20, 16, 8, 2, 2)
        )

    @classmethod
    def presets(cls) -> dict[str, SoVITSConfig]:
        return {"v1": cls.v1(), "v2": cls.v2(), "v2Pro": cls.v2Pro(), "v2ProPlus": cls.v2ProPlus()}

    @classmethod
    def from_name(cls, name: str) -> SoVITSConfig:
        presets = cls.presets()
        if name not in presets:
            raise ValueError(f"unknown SoVITS preset {name!r}; known: {sorted(presets)}")
        return presets[name]

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any], version: str | None = None) -> SoVITSConfig:
        """Build from upstream's s2 config dict (``{"data": …, "model": …, "train": …}``).

        ``version`` (``"v1"``/``"v2"``/``"v2Pro"``/``"v2ProPlus"``, e.g. from the file header) picks the
        preset; when None it is read from ``model.version`` / ``version`` (default v2). Sizes that upstream
        hard-codes (MRTE, SSL dim, SV width) keep the preset values; the checkpoint loader infers them from
        weights. v3/v4 (a different decoder) raise ValueError.
        """
        model = dict(hparams.get("model") or {})
        data = dict(hparams.get("data") or {})
        train = dict(hparams.get("train") or {})
        version = str(version or model.get("version") or hparams.get("version") or "v2")
        if version.startswith(("v3", "v4")):
            raise ValueError(f"SoVITS {version} (CFM decoder) is not supported")
        base = cls.presets().get(version, cls.v2())
        filter_length = int(data.get("filter_length", base.filter_length))
        hop_length = int(data.get("hop_length", base.hop_length))
        segment_samples = train.get("segment_size")
        kwargs: dict[str, Any] = {
            "version": base.version,
            "sampling_rate": int(data.get("sampling_rate", base.sampling_rate)),
            "filter_length": filter_length,
            "hop_length": hop_length,
            "win_length": int(data.get("win_length", base.win_length)),
            "segment_size": int(segment_samples) // hop_length if segment_samples else base.segment_size,
            "ref_enc_in_bins": filter_length // 2 + 1 if version == "v1" else base.ref_enc_in_bins,
        }
        for name in (
            "inter_channels",
            "hidden_channels",
            "filter_channels",
            "n_heads",
            "n_layers",
            "kernel_size",
            "upsample_initial_channel",
            "gin_channels",
        ):
            if name in model:
                kwargs[name] = int(model[name])
        if "p_dropout" in model:
            kwargs["p_dropout"] = float(model["p_dropout"])
        if "resblock" in model:
            kwargs["resblock"] = str(model["resblock"])
        for name in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            if name in model:
                kwargs[name] = tuple(int(v) for v in model[name])
        if "resblock_dilation_sizes" in model:
            kwargs["resblock_dilation_sizes"] = tuple(
                tuple(int(v) for v in d) for d in model["resblock_dilation_sizes"]
            )
        if "freeze_quantizer" in model:
            kwargs["freeze_quantizer"] = bool(model["freeze_quantizer"])
        # Inference always runs the 25 Hz semantic path (upstream overrides the stored value).
        return replace(base, **kwargs)

    def to_hparams_model(self) -> dict[str, Any]:
        """The ``model`` section upstream expects (for writing official-format files)."""
        return {
            "inter_channels": self.inter_channels,
            "hidden_channels": self.hidden_channels,
            "filter_channels": self.filter_channels,
            "n_heads": self.n_heads,
            "n_layers": self.n_layers,
            "kernel_size": self.kernel_size,
            "p_dropout": self.p_dropout,
            "resblock": self.resblock,
            "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes],
            "upsample_rates": list(self.upsample_rates),
            "upsample_initial_channel": self.upsample_initial_channel,
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "n_layers_q": 3,
            "use_spectral_norm": False,
            "gin_channels": self.gin_channels,
            "semantic_frame_rate": self.semantic_frame_rate,
            "freeze_quantizer": self.freeze_quantizer,
            "version": self.version,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
