"""Voice packs: round trip, version and checksum refusal, and hostile zips that must never write outside the target."""

from __future__ import annotations

import dataclasses
import json
import stat
import struct
import uuid
import wave
import zipfile
from pathlib import Path

import pytest
import torch

from studio.errors import VoicePackError
from studio.models.lora import GPT_DEFAULT_TARGETS, LoRAConfig
from studio.voicepack import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    ConsentRecord,
    ExtractLimits,
    FileRef,
    ReferenceClip,
    VoiceManifest,
    WeightsInfo,
    open_voicepack,
    write_voicepack,
)

FAKE_SHA = "ab" * 32


def _write_wav(path: Path, seconds: float = 0.25, rate: int = 32000) -> Path:
    gen = torch.Generator().manual_seed(1)
    samples = (torch.randn(int(seconds * rate), generator=gen) * 3000).clamp(-32768, 32767).to(torch.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.numpy().tobytes())
    return path


def _manifest(ref_names: list[str]) -> VoiceManifest:
    return VoiceManifest(
        name="Test voice",
        languages=("zh", "en"),
        base_model={"gpt": FileRef("s1v2.ckpt", FAKE_SHA), "sovits": FileRef("s2G2333k.pth", "cd" * 32)},
        configs={"gpt": {"embedding_dim": 32, "n_layer": 2}, "sovits": {"hidden_channels": 16}},
        weights=WeightsInfo(
            kind="lora", lora={s: LoRAConfig(4, 8.0, targets=GPT_DEFAULT_TARGETS).to_dict() for s in ("gpt", "sovits")}
        ),
        references=tuple(ReferenceClip(n, "你好，世界。", "zh") for n in ref_names),
        consent=ConsentRecord("Ada", "I recorded this and agree to its use.", "2026-01-02", True),
        training={"steps": 120, "epochs": 3, "final_loss": {"gpt": 1.25}},
    )


def _weights() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return {
        "gpt": {
            "h.layers.0.linear1.lora_A": torch.randn(4, 32, generator=gen),
            "h.layers.0.linear1.lora_B": torch.randn(128, 4, generator=gen).half(),
        },
        "sovits": {"enc_p.proj.lora_A": torch.randn(4, 16, 1, generator=gen), "steps": torch.arange(5)},
    }


@pytest.fixture()
def pack(tmp_path: Path) -> tuple[Path, VoiceManifest, dict, Path]:
    ref = _write_wav(tmp_path / "参考 clip.wav")
    out = tmp_path / "packs" / "voice.zip"
    written = write_voicepack(out, _manifest([ref.name]), _weights(), [ref])
    return out, written, _weights(), ref


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes] | None = None, extra: list[tuple] = ()) -> Path:
    """Copy a pack entry by entry, replacing some contents and appending (ZipInfo | name, bytes) entries."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, replace.get(info.filename, zin.read(info)))
        for info, data in extra:
            zout.writestr(info, data)
    return dst


def _assert_refused(zip_path: Path, tmp_path: Path, match: str, **kwargs) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    before = _tree(tmp_path)
    with pytest.raises(VoicePackError, match=match):
        open_voicepack(zip_path, sandbox / "voice", **kwargs)
    assert _tree(tmp_path) == before  # nothing extracted, no staging folder left, nothing written beside it


# ----------------------------------------------------------------------------------------------- round trip


def test_round_trip_gives_back_tensors_manifest_and_audio(pack, tmp_path: Path) -> None:
    out, written, weights, ref = pack
    assert sorted(p.name for p in out.parent.iterdir()) == ["voice.zip"]  # no temp file left
    opened = open_voicepack(out, tmp_path / "opened")
    assert opened.manifest == written
    assert opened.manifest.format_version == FORMAT_VERSION
    assert opened.manifest.references[0].file == f"references/{ref.name}"
    assert opened.manifest.training["final_loss"] == {"gpt": 1.25}
    for stage, tensors in weights.items():
        loaded = opened.load_weights(stage)
        assert loaded.keys() == tensors.keys()
        for key, tensor in tensors.items():
            assert loaded[key].dtype == tensor.dtype and torch.equal(loaded[key], tensor), key
    ((path, clip),) = opened.reference_paths()
    assert path.read_bytes() == ref.read_bytes() and clip.text == "你好，世界。"
    assert LoRAConfig.from_dict(opened.manifest.weights.lora["gpt"]).targets == GPT_DEFAULT_TARGETS


def test_manifest_rules_are_enforced_on_write(tmp_path: Path) -> None:
    ref = _write_wav(tmp_path / "ref.wav")
    out = tmp_path / "voice.zip"
    with pytest.raises(VoicePackError, match="do not match"):
        write_voicepack(out, _manifest(["other.wav"]), _weights(), [ref])
    no_base = dataclasses.replace(_manifest([ref.name]), base_model={"gpt": FileRef("s1.ckpt", FAKE_SHA)})
    with pytest.raises(VoicePackError, match="base sovits"):
        write_voicepack(out, no_base, _weights(), [ref])
    no_lora_cfg = dataclasses.replace(_manifest([ref.name]), weights=WeightsInfo(kind="lora"))
    with pytest.raises(VoicePackError, match="no LoRA settings"):
        write_voicepack(out, no_lora_cfg, _weights(), [ref])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.wav"]


def test_a_failed_export_keeps_the_previous_pack(pack, monkeypatch) -> None:
    out, _, _, ref = pack
    before = out.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", disk_full)  # fails after manifest and weights are written
    with pytest.raises(OSError, match="No space"):
        write_voicepack(out, _manifest([ref.name]), _weights(), [ref])
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["voice.zip"]


# ----------------------------------------------------------------------------------------------- refusals


def test_unknown_format_version_is_refused(pack, tmp_path: Path) -> None:
    out = pack[0]
    data = json.loads(zipfile.ZipFile(out).read(MANIFEST_NAME))
    data["format_version"] = FORMAT_VERSION + 1
    bad = _rewrite(out, tmp_path / "future.zip", {MANIFEST_NAME: json.dumps(data).encode()})
    _assert_refused(bad, tmp_path, f"format version {FORMAT_VERSION + 1}")


def test_checksum_tampering_is_refused(pack, tmp_path: Path) -> None:
    out, written = pack[0], pack[1]
    name = written.weights.files["gpt"].file
    blob = bytearray(zipfile.ZipFile(out).read(name))
    blob[-3] ^= 0xFF  # one flipped byte in the tensor data
    _assert_refused(_rewrite(out, tmp_path / "tampered.zip", {name: bytes(blob)}), tmp_path, "checksum")


def test_files_not_named_by_the_manifest_are_refused(pack, tmp_path: Path) -> None:
    bad = _rewrite(pack[0], tmp_path / "extra.zip", extra=[("references/extra.wav", b"RIFF")])
    _assert_refused(bad, tmp_path, "unexpected")


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("references/link.wav")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "entry, match",
    [
        ("../evil", "outside"),
        (f"/tmp/studio-evil-{uuid.uuid4().hex}", "absolute"),
        ("C:/evil.wav", "absolute"),
        ("references/..\\evil", "backslash"),
        (_symlink_entry(), "symbolic link"),
    ],
    ids=["dotdot", "absolute", "drive", "backslash", "symlink"],
)
def test_hostile_entry_names_are_refused(pack, tmp_path: Path, entry, match) -> None:
    bad = _rewrite(pack[0], tmp_path / "evil.zip", extra=[(entry, b"/etc/passwd")])
    _assert_refused(bad, tmp_path, match)
    assert not (tmp_path / "evil").exists()
    if isinstance(entry, str) and entry.startswith("/tmp/"):
        assert not Path(entry).exists()


def _patch_declared_size(path: Path, name: str, size: int) -> None:
    """Make the headers of ``name`` claim ``size`` uncompressed bytes (both local and central records)."""
    raw = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        start = 0
        while (start := raw.find(signature, start)) != -1:
            name_at = start + (46 if signature == b"PK\x01\x02" else 30)
            if raw[name_at : name_at + len(encoded)] == encoded:
                raw[start + offset : start + offset + 4] = struct.pack("<I", size)
            start += 4
    path.write_bytes(bytes(raw))


def test_an_entry_declaring_one_gigabyte_is_refused(pack, tmp_path: Path) -> None:
    bad = _rewrite(pack[0], tmp_path / "huge.zip", extra=[("references/huge.wav", b"RIFF" * 16)])
    _patch_declared_size(bad, "references/huge.wav", 1_000_000_000)
    assert zipfile.ZipFile(bad).getinfo("references/huge.wav").file_size == 1_000_000_000
    _assert_refused(bad, tmp_path, "declares 1000000000 bytes")


def test_a_high_ratio_bomb_is_refused(pack, tmp_path: Path) -> None:
    bomb = zipfile.ZipInfo("references/bomb.wav")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    bad = _rewrite(pack[0], tmp_path / "bomb.zip", extra=[(bomb, bytes(16 << 20))])
    _assert_refused(bad, tmp_path, "expands")


def test_a_header_that_understates_its_size_is_refused(pack, tmp_path: Path) -> None:
    name = pack[1].weights.files["gpt"].file
    bad = _rewrite(pack[0], tmp_path / "liar.zip")
    _patch_declared_size(bad, name, 16)
    _assert_refused(bad, tmp_path, "corrupt|more data|checksum")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_names_and_too_many_entries_are_refused(pack, tmp_path: Path) -> None:
    out, written = pack[0], pack[1]
    dup = _rewrite(out, tmp_path / "dup.zip", extra=[(written.references[0].file.upper(), b"x")])
    _assert_refused(dup, tmp_path, "twice")
    _assert_refused(out, tmp_path, "entries", limits=ExtractLimits(max_entries=2))
    _assert_refused(out, tmp_path, "declares", limits=ExtractLimits(max_file_bytes=64))


def test_not_a_zip_and_a_non_empty_target_are_refused(pack, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip")
    _assert_refused(junk, tmp_path, "Cannot open")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(VoicePackError, match="not empty"):
        open_voicepack(pack[0], occupied)
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
