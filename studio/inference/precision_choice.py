"""Choosing and applying a precision mode on this machine (``--precision auto|fp32|bf16|int8``).

``auto`` is decided by measuring, not by guessing from the CPU's name: the kernels a decoding step spends its
time in (the GPT's 96 matrix-vector products at official size, one HiFiGAN stage's convolutions) are timed
in fp32, bf16 and int8, once per machine, and the result is kept in ``$STUDIO_CACHE_DIR/precision.json``
(keyed by CPU model, SIMD flags, thread count and PyTorch version; about two seconds the first time). The
fastest mode wins; then, when the voice is loaded, the converted GPT must pass the quality bounds against its
own fp32 logits (:func:`check_gpt`) or the voice stays fp32 — a mode is never chosen for speed alone.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.models import onnx_step
from studio.models.precision import (
    PRECISION_MODES,
    PrecisionPlan,
    check_mode,
    convert_gpt,
    int8_available,
    light_linear,
    plan_for,
)
from studio.models.precision_quality import GptAgreement, gpt_agreement, teacher_forced_logits

_LOGGER = logging.getLogger(__name__)
_FORMAT = 2  # 2: ONNX Runtime's int8 products timed too ("int8-onnx")
RUNTIME_ENV = "STUDIO_GPT_RUNTIME"  # "pytorch" or "onnxruntime": overrides the measured choice for an int8 GPT
# "openvino": a light mode's SoVITS decoder runs on OpenVINO (faster, ~300 MB more memory: see _use_openvino).
DECODER_ENV = "STUDIO_DECODER_RUNTIME"
_MIN_GAIN = 1.15  # a lighter mode must be at least this much faster to be worth its (small) quality cost


@dataclass(frozen=True)
class MachineSpeeds:
    """Measured milliseconds of one GPT decoding step's matrices and one decoder stage, per precision."""

    gpt_ms: dict[str, float]
    conv_ms: dict[str, float]

    def mode_ms(self, mode: str) -> float | None:
        """A mode's time: for int8 the faster of PyTorch's kernel and ONNX Runtime's (None: not measured)."""
        times = [self.gpt_ms[k] for k in (mode, f"{mode}-onnx") if k in self.gpt_ms]
        return min(times) if times else None

    def fastest_mode(self) -> str:
        best = "fp32"
        for mode in ("bf16", "int8"):
            ms = self.mode_ms(mode)
            if ms is not None and self.gpt_ms["fp32"] / ms >= _MIN_GAIN:
                if best == "fp32" or ms < self.mode_ms(best):
                    best = mode
        return best

    @property
    def onnx_faster(self) -> bool:
        """ONNX Runtime's int8 products beat PyTorch's on this machine (an int8 GPT then decodes there)."""
        onnx, torch_ms = self.gpt_ms.get("int8-onnx"), self.gpt_ms.get("int8")
        return onnx is not None and (torch_ms is None or onnx < torch_ms)

    @property
    def fast_bf16(self) -> bool:
        return "bf16" in self.conv_ms and self.conv_ms["fp32"] / self.conv_ms["bf16"] >= _MIN_GAIN


def cache_dir() -> Path:
    root = os.environ.get("STUDIO_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sovits-studio"


def machine_key() -> str:
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = " ".join(sorted(w for w in line.split(":", 1)[1].split() if "avx" in w or "amx" in w))
    except OSError:
        pass
    return f"{model} | {flags} | threads {torch.get_num_threads()} | torch {torch.__version__}"


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@torch.inference_mode()
def measure_speeds(repeats: int = 5) -> MachineSpeeds:
    """Time the decoding step's matrices (official GPT sizes, random weights) and a decoder stage."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(1536, 512), (512, 512), (2048, 512), (512, 2048)] * 24
    weights = [torch.randn(n, k, generator=gen) * 0.02 for n, k in shapes]
    x = {512: torch.randn(1, 512, generator=gen), 2048: torch.randn(1, 2048, generator=gen)}
    modes = ["fp32", "bf16"] + (["int8"] if int8_available() else [])
    gpt_ms: dict[str, float] = {}
    for mode in modes:
        if mode == "fp32":
            gpt_ms[mode] = _median_ms(lambda: [F.linear(x[w.shape[1]], w) for w in weights], repeats)
        else:
            layers = [light_linear(w, None, mode) for w in weights]
            gpt_ms[mode] = _median_ms(lambda layers=layers: [m(x[m.in_features]) for m in layers], repeats)
            del layers
    if "int8" in gpt_ms and onnx_step.available():
        try:
            gpt_ms["int8-onnx"] = _median_ms(onnx_step.matrix_runner(weights), repeats)
        except Exception as exc:  # an ONNX Runtime without MatMulNBits: PyTorch's kernel is the one
            _LOGGER.warning("timing ONNX Runtime's int8 products failed: %s", exc)
    conv_ms = {}
    for mode, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(1, 64, 1, 16000, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
        w = (torch.randn(64, 64, 1, 7, generator=gen) * 0.05).to(dtype).contiguous(memory_format=torch.channels_last)
        conv_ms[mode] = _median_ms(lambda a=a, w=w: F.conv2d(a, w, padding=(0, 3)), repeats)
    return MachineSpeeds(gpt_ms, conv_ms)


def _measure_in_child() -> MachineSpeeds:
    """:func:`measure_speeds` in a child process, so its 300 MB of throw-away matrices never count in this
    process's peak memory; in this process when no child can be started."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "studio.inference.precision_choice", str(torch.get_num_threads())]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
        data = json.loads(done.stdout.strip().splitlines()[-1])
        return MachineSpeeds(dict(data["gpt_ms"]), dict(data["conv_ms"]))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError) as exc:
        _LOGGER.warning("measuring the precision modes in a child process failed (%s); measuring here", exc)
        return measure_speeds()


def machine_speeds() -> MachineSpeeds:
    """This machine's speeds, measured once and cached (a damaged cache file is measured again)."""
    path = cache_dir() / "precision.json"
    key = machine_key()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") == _FORMAT and data.get("machine") == key:
            return MachineSpeeds(dict(data["gpt_ms"]), dict(data["conv_ms"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    speeds = _measure_in_child()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": _FORMAT, "machine": key, **asdict(speeds)}, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        _LOGGER.warning("could not keep the precision measurement in %s: %s", path, exc)
    return speeds


def resolve_plan(requested: str, device: str | torch.device = "cpu") -> PrecisionPlan:
    """The plan for ``requested`` ('auto' measures this machine; see the module docstring)."""
    requested = check_mode(requested, allow_auto=True)
    device = torch.device(device).type
    if device != "cpu":
        fast_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        mode = ("bf16" if fast_bf16 else "fp32") if requested == "auto" else requested
        return plan_for(mode, fast_bf16=fast_bf16, device=device, reason=f"{device} device")
    if requested != "auto":
        speeds = machine_speeds() if requested != "fp32" else None
        onnx = _use_onnx(speeds) if requested == "int8" else False
        fast_bf16 = bool(speeds and speeds.fast_bf16)
        return plan_for(requested, fast_bf16=fast_bf16, reason="chosen", onnx_step=onnx,
                        openvino_decoder=_use_openvino())  # fmt: skip
    speeds = machine_speeds()
    ratios = ", ".join(
        f"{m} {speeds.gpt_ms['fp32'] / speeds.gpt_ms[m]:.2f}×" for m in (*PRECISION_MODES, "int8-onnx")
        if m in speeds.gpt_ms
    )  # fmt: skip
    reason = (
        f"measured GPT step speed vs fp32: {ratios}; bf16 convolutions {'faster' if speeds.fast_bf16 else 'slower'}"
    )
    return plan_for(speeds.fastest_mode(), fast_bf16=speeds.fast_bf16, reason=reason, onnx_step=_use_onnx(speeds),
                    openvino_decoder=_use_openvino())  # fmt: skip


def _use_openvino() -> bool:
    """Whether a light mode's SoVITS decoder runs on OpenVINO: only when ``STUDIO_DECODER_RUNTIME=openvino``.

    Measured here (official size, bf16, 2 cores, ``bench/engine.py``): SoVITS decode RTF 0.056 against PyTorch's
    0.068, with a slightly better SNR. But OpenVINO's compiled windows hold ~300 MB more (its plugin, the weights
    in its layout, and every intermediate tensor of a window planned ahead), which would break the memory targets
    of the light modes (English ≤ 1 GiB); so it is a choice, not the default."""
    from studio.models.sovits import openvino_decoder

    return os.environ.get(DECODER_ENV, "").strip().lower() == "openvino" and openvino_decoder.available()


def _use_onnx(speeds: MachineSpeeds | None) -> bool:
    """Whether an int8 GPT decodes on ONNX Runtime: as measured, unless ``STUDIO_GPT_RUNTIME`` says otherwise."""
    forced = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if forced in ("pytorch", "torch"):
        return False
    if forced == "onnxruntime":
        return onnx_step.available()
    return bool(speeds and speeds.onnx_faster)


def _probe_inputs(model: torch.nn.Module, n_text: int = 24, n_tokens: int = 24):
    gen = torch.Generator().manual_seed(1234)
    cfg = model.config
    dev = model.ar_predict_layer.weight.device
    phones = torch.randint(0, cfg.phoneme_vocab_size, (1, n_text), generator=gen).to(dev)
    bert = torch.zeros(1, cfg.bert_dim, n_text, device=dev)
    tokens = torch.randint(0, cfg.vocab_size - 1, (1, n_tokens), generator=gen).to(dev)
    return phones, bert, tokens


def gpt_identity(path: str | os.PathLike[str]) -> str | None:
    """What a voice's quality verdict is kept under: its GPT file (resolved path, size, mtime); None when the file
    cannot be read (the check then runs, and nothing is kept)."""
    try:
        info = Path(path).stat()
        return f"{Path(path).resolve()} | {info.st_size} | {info.st_mtime_ns}"
    except OSError:
        return None


_CHECKS_FORMAT = 1
_MAX_CHECKS = 64  # verdicts kept (the most recent)


def _check_key(identity: str, mode: str, runtime: str) -> str:
    try:
        from importlib.metadata import version

        ort = version("onnxruntime") if runtime == "onnxruntime" else "-"
    except Exception:  # PackageNotFoundError, a broken install: the verdict is kept under "unknown"
        ort = "unknown"
    if runtime == "onnxruntime":  # the step's form of cache, and its calibration margin, are part of what is judged
        ort += f", kv {'int8 ×' + str(onnx_step.KV_MARGIN) if onnx_step.KV_INT8 else 'fp32'}"
    return f"{identity} | {mode} on {runtime} (onnxruntime {ort}) | {machine_key()}"


def _checks_path() -> Path:
    return cache_dir() / "gpt_checks.json"


def _read_checks() -> dict[str, list[float]]:
    try:
        data = json.loads(_checks_path().read_text(encoding="utf-8"))
        if data.get("format") == _CHECKS_FORMAT and isinstance(data.get("checks"), dict):
            return dict(data["checks"])
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _kept_check(key: str) -> GptAgreement | None:
    entry = _read_checks().get(key)
    try:
        kl, top1, steps = entry  # type: ignore[misc]
        return GptAgreement(float(kl), float(top1), int(steps))
    except (TypeError, ValueError):
        return None


def _keep_check(key: str, agreement: GptAgreement) -> None:
    checks = _read_checks()
    checks.pop(key, None)
    checks[key] = [agreement.kl, agreement.top1, agreement.steps]
    checks = dict(list(checks.items())[-_MAX_CHECKS:])
    path = _checks_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": _CHECKS_FORMAT, "checks": checks}, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        _LOGGER.warning("could not keep the GPT quality check in %s: %s", path, exc)


def convert_gpt_checked(
    model: torch.nn.Module, mode: str, runtime: str = "pytorch", identity: str | None = None
) -> tuple[torch.nn.Module, GptAgreement | None, str]:
    """Convert the fp32 GPT to ``mode`` (an int8 one decoding on ``runtime``) and measure its teacher-forced
    agreement with the fp32 logits it gave before (24 phones, 24 tokens). Returns (model, agreement or None
    for fp32, the runtime that holds: "pytorch" when ONNX Runtime could not take the step).

    ``identity`` (:func:`gpt_identity` of the voice's GPT file): the agreement measured for that file, mode and
    runtime on this machine and these kernels is kept in ``$STUDIO_CACHE_DIR/gpt_checks.json`` and reused by the
    next load (~0.7 s of every int8 voice load at official size); an edited file is checked again."""
    if check_mode(mode) == "fp32":
        return convert_gpt(model, "fp32"), None, "pytorch"
    key = None if identity is None else _check_key(identity, mode, runtime)
    kept = None if key is None else _kept_check(key)
    if kept is None:
        probe = _probe_inputs(model)
        reference = teacher_forced_logits(model, *probe)
    convert_gpt(model, mode)
    held = runtime
    if runtime == "onnxruntime" and not onnx_step.attach(model):
        held = "pytorch"
    if kept is not None:  # (its fp32 reference is not there to check again when the runtime fell back)
        if held != runtime:
            _LOGGER.warning("the kept GPT quality check was for %s; not checked again on %s", runtime, held)
        return model, kept, held
    agreement = gpt_agreement(reference, teacher_forced_logits(model, *probe))
    if key is not None and held == runtime:
        _keep_check(key, agreement)
    return model, agreement, held


def apply_plan(
    gpt: torch.nn.Module, sovits: torch.nn.Module, plan: PrecisionPlan, gpt_identity: str | None = None
) -> tuple[PrecisionPlan, bool]:
    """Convert a freshly loaded fp32 GPT and SoVITS to ``plan`` in place (``gpt_identity``: see
    :func:`convert_gpt_checked`).

    Returns (the plan that holds now, whether the GPT must be reloaded in fp32): a GPT whose converted logits
    fail the quality bounds is reported and must go back to fp32 (its fp32 weights were released).
    """
    from dataclasses import replace

    from studio.models.precision import prepare_sovits
    from studio.models.sovits.fast_decoder import warm_generator

    decoder_runtime = prepare_sovits(sovits, plan.sovits, plan.sovits_runtime)
    if decoder_runtime != plan.sovits_runtime:
        plan = replace(plan, sovits_runtime=decoder_runtime, reason=plan.reason + "; OpenVINO unavailable")
    warm_generator(sovits.dec)  # the CPU decoder's kernels are built now, not during the first sentence
    if plan.gpt == "fp32":
        convert_gpt(gpt, "fp32")
        return plan, False
    _, agreement, runtime = convert_gpt_checked(gpt, plan.gpt, plan.gpt_runtime, gpt_identity)
    if runtime != plan.gpt_runtime:
        plan = replace(plan, gpt_runtime=runtime, reason=plan.reason + "; ONNX Runtime unavailable")
    if agreement is not None and not agreement.passes:
        _LOGGER.warning(
            "the %s GPT strays too far from fp32 on this voice (KL %.4f nats, top-1 agreement %.0f %%): using fp32",
            plan.gpt, agreement.kl, 100 * agreement.top1,
        )  # fmt: skip
        reason = plan.reason + f"; GPT {plan.gpt} failed its quality check"
        return replace(plan, gpt="fp32", gpt_runtime="pytorch", reason=reason), True
    _LOGGER.info("precision %s (%s)", plan.describe(), plan.reason)
    return plan, False


if __name__ == "__main__":  # the child of _measure_in_child: python -m studio.inference.precision_choice THREADS
    import sys

    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
    print(json.dumps(asdict(measure_speeds())))
