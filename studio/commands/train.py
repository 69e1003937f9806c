"""``studio train``: fine-tune the GPT and/or SoVITS stage on a prepared voice project, showing progress."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from studio.commands.argtypes import positive, ranged
from studio.inference.requests import SEED_MAX

MAX_BATCH_SIZE = 256  # far above what a 24 GB card fits for these models; more is a typo, not a wish


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a voice on a prepared dataset",
        description="Train LoRA adapters (default) or full weights of the GPT and SoVITS stages on "
        "workspace/NAME/dataset.list. Runs in a child process; Ctrl-C stops it after a checkpoint, "
        "--resume continues the latest run.",
    )
    p.add_argument("--name", required=True, help="voice project name")
    p.add_argument("--workspace", type=Path, default=None, help="workspace folder (default: workspace/)")
    p.add_argument("--pretrained", type=Path, default=None, help="base models folder (default: pretrained/)")
    p.add_argument("--stage", choices=("gpt", "sovits", "both"), default="both", help="which stage(s) to train")
    p.add_argument(
        "--base",
        choices=("v2", "v2Pro", "v2ProPlus"),
        default=None,
        help="base models to start from (default: the best whose files are present: v2ProPlus, v2Pro, then v2)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora-rank", type=positive, default=16, metavar="R", help="LoRA rank (default 16)")
    mode.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA adapters")
    p.add_argument("--preset", choices=("fast", "balanced", "best"), default="balanced", help="default: balanced")
    p.add_argument("--epochs", type=positive, default=None, help="epochs per stage (default: from the preset)")
    p.add_argument(
        "--batch-size",
        type=ranged(int, 1, MAX_BATCH_SIZE, "the batch size"),
        default=None,
        metavar="B",
        help=f"1–{MAX_BATCH_SIZE} (default: from the preset)",
    )
    p.add_argument("--max-steps", type=positive, default=None, metavar="N", help="stop each stage after N steps")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument("--seed", type=ranged(int, 0, SEED_MAX, "the seed"), default=1234)
    p.add_argument("--resume", action="store_true", help="continue the latest unfinished run of this project")
    p.add_argument("--detach", action="store_true", help="start the job and return at once")
    p.add_argument(
        "--no-epoch-choice",
        action="store_true",
        help="skip comparing the epochs by listening after training (faster; the last epoch is used)",
    )
    p.add_argument(
        "--score-epochs",
        action="store_true",
        help="compare the epochs of the latest finished run now (older runs) and print the table",
    )
    p.set_defaults(run=run)


def _service(args: argparse.Namespace):
    from studio.pretrained import PretrainedAssets, default_pretrained_dir
    from studio.services.training import TrainingService
    from studio.settings import default_device
    from studio.workspace import default_workspace_root

    root = args.workspace or default_workspace_root()
    pretrained = PretrainedAssets(Path(args.pretrained) if args.pretrained else default_pretrained_dir())
    return TrainingService(root, pretrained, device=args.device or default_device())


def _format(event) -> str | None:
    where = f"[{event.stage}]" if event.stage else ""
    if event.kind == "step" and event.stage == "features":
        return None
    if event.kind == "step" and event.lr is None:  # progress of a stage that does not train (epoch scoring)
        return f"{where} {event.step}/{event.total_steps} {event.message or ''}".rstrip()
    if event.kind == "step":
        losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
        eta = f" eta {event.eta_s:.0f}s" if event.eta_s is not None else ""
        return f"{where} epoch {event.epoch} step {event.step}/{event.total_steps} {losses} lr={event.lr:.3g}{eta}"
    if event.kind == "sample":
        return f"{where} epoch {event.epoch} sample: {event.path}"
    if event.kind in ("stage", "stage_done", "log", "start", "cancelled", "error", "done"):
        return f"{where} {event.kind}: {event.message or event.path or ''}".strip()
    return None


def run(args: argparse.Namespace) -> int:
    from studio.errors import TrainingError
    from studio.services.training import TrainingOptions

    service = _service(args)
    if args.score_epochs:
        return _score_latest(service, args.name)
    if args.resume:
        unfinished = [r for r in service.list_runs(args.name) if r.state != "done"]
        if not unfinished:
            raise TrainingError(f"Project {args.name!r} has no unfinished run to resume.")
        run_id = service.resume(unfinished[0].run_id)
    else:
        stages = ("gpt", "sovits") if args.stage == "both" else (args.stage,)
        choice = service.base_choice(args.base)
        print(f"training from {choice.describe()}", flush=True)
        options = TrainingOptions(
            stages=stages,
            base=choice.version,
            lora_rank=None if args.full else args.lora_rank,
            full=args.full,
            preset=args.preset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            max_steps=args.max_steps,
            device=args.device,
            seed=args.seed,
            epoch_choice=not args.no_epoch_choice,
        )
        run_id = service.start(args.name, options)
    print(f"run {run_id}", flush=True)
    if args.detach:
        return 0
    return _follow(service, run_id)


def _follow(service, run_id: str) -> int:
    since = 0
    try:
        while True:
            page = service.events(run_id, since)
            since = page.next_since
            for event in page.events:
                line = _format(event)
                if line:
                    print(line, flush=True)
            status = service.status(run_id)
            if status.finished:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping after the current step…", file=sys.stderr, flush=True)
        service.stop(run_id)
        status = service.wait(run_id)
    if status.state == "done":
        print(f"done: outputs in {service.run_dir(run_id)}")
        _print_epochs(service, run_id)
        return 0
    print(f"training {status.state}: {status.message or ''}", file=sys.stderr)
    return 130 if status.state == "cancelled" else 1


def _print_epochs(service, run_id: str) -> None:
    """The per-epoch listening scores and the recommended epoch, when the run has them."""
    from studio.services.epoch_choice import format_table

    report = service.epoch_report(run_id)
    if report is not None and report.scores:
        print("\nepochs compared by listening (CER: misread characters, lower is better; similarity to your clips, "
              "higher is better):")  # fmt: skip
        print(format_table(report), flush=True)


def _score_latest(service, name: str) -> int:
    from studio.errors import TrainingError

    finished = [r for r in service.list_runs(name) if r.state == "done"]
    if not finished:
        raise TrainingError(f"Project {name!r} has no finished run whose epochs could be compared.")
    run_id = finished[0].run_id
    print(f"run {run_id}: comparing its epochs…", flush=True)
    service.score_epochs(
        run_id, on_progress=lambda done, total, msg: print(f"[epochs] {done}/{total} {msg}", flush=True)
    )
    _print_epochs(service, run_id)
    return 0
