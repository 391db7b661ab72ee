"""`jetseg distill`: train a small student on a teacher bundle's outputs and write a bundle (gated)."""
from __future__ import annotations

import argparse
import signal
from typing import Any, Callable

from jetseg.bundle import OVERWRITE_HELP

HELP = "distill a teacher bundle into a small real-time student (soft targets, gate on Dice vs teacher)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetseg.cli.train import add_thread_arguments
    from jetseg.models.archs import ARCHITECTURES

    parser.add_argument("teacher", metavar="TEACHER_BUNDLE", help="the bundle to reproduce (run through --backend)")
    parser.add_argument("--student", default="unet-tiny",
                        help="student architecture (%s; default unet-tiny)" % ", ".join(ARCHITECTURES.names()))
    parser.add_argument("--scans", required=True, metavar="SOURCE",
                        help="training frames, labels optional: synthetic://ultrasound, an image folder, a video, ...")
    parser.add_argument("--labels", action="store_true",
                        help="also fit the scans' masks (every training frame must have one)")
    parser.add_argument("--out", required=True, metavar="BUNDLE", help="student bundle directory to write")
    parser.add_argument("--val-scans", default=None, metavar="SOURCE",
                        help="held-out frames: half choose the step, half decide the gate (default: synthetic "
                             "seeds +1000 and +2000; other sources: the last --val-fraction of frames)")
    parser.add_argument("--gate-dice", type=float, default=0.95,
                        help="refuse a student whose held-out Dice vs the teacher is lower (default 0.95)")
    parser.add_argument("--temperature", type=float, default=2.0, help="soft-target temperature (default 2)")
    parser.add_argument("--label-weight", type=float, default=0.5,
                        help="weight of the label loss with --labels (default 0.5)")
    parser.add_argument("--dice-weight", type=float, default=1.0,
                        help="weight of the soft Dice vs the teacher's probabilities (default 1)")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps (default 600)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--lr", type=float, default=1e-2, help="peak learning rate, one-cycle (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for initialisation, order, augmentation")
    parser.add_argument("--frames", type=int, default=1200, help="training frames kept from the source (default 1200)")
    parser.add_argument("--every", type=int, default=None,
                        help="keep every k-th training frame (default 4 for synthetic data, else 1)")
    parser.add_argument("--val-frames", type=int, default=60, help="frames per held-out set (default 60)")
    parser.add_argument("--val-every", type=int, default=None,
                        help="keep every k-th held-out frame (default 10 for synthetic data, else 1)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of a finite source held out when no --val-scans is given (default 0.2)")
    parser.add_argument("--eval-interval", type=int, default=100, help="steps between held-out evaluations")
    parser.add_argument("--depth", type=int, default=None,
                        help="student U-Net depth (default: 3 for unet-tiny, else the architecture's)")
    parser.add_argument("--base-width", type=int, default=None, help="student U-Net base width (architecture default)")
    parser.add_argument("--backend", default="onnxrt", help="runner for the teacher and the student check (onnxrt)")
    add_thread_arguments(parser, "the --backend runner (the teacher, and the student's held-out check)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _stop_on_sigterm() -> Callable[[int, Any], None]:
    """A SIGTERM handler that removes what this run staged and ends the process at once (as ``jetseg
    calibrate`` does): an exception raised from a signal handler can land anywhere, even outside the
    command's own error handling. Nothing is written to --out before its final atomic rename."""

    def handler(signum: int, _frame: Any) -> None:
        import os
        import shutil
        import sys

        from jetseg.bundle import in_progress

        for path in in_progress():  # the exact folders this run made, never a name pattern
            shutil.rmtree(str(path), ignore_errors=True)
        sys.stderr.write("jetseg distill: stopped by SIGTERM; nothing written\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    return handler


def run(args: argparse.Namespace) -> int:
    from jetseg.cli.train import check_loop_options, unet_kwargs
    from jetseg.training.distill import DistillConfig, distill

    check_loop_options(args)
    arch_kwargs = unet_kwargs(args)
    cfg = DistillConfig(teacher=args.teacher, scans=args.scans, student=args.student, out=args.out,
                        labels=args.labels, label_weight=args.label_weight, temperature=args.temperature,
                        dice_weight=args.dice_weight, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                        frames=args.frames, every=args.every, val_scans=args.val_scans, val_frames=args.val_frames,
                        val_every=args.val_every, val_fraction=args.val_fraction, eval_interval=args.eval_interval,
                        gate_dice=args.gate_dice, backend=args.backend, threads=args.threads,
                        train_threads=args.train_threads, arch_kwargs=arch_kwargs, overwrite=args.overwrite)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm())
    try:
        bundle = distill(cfg)
    finally:
        signal.signal(signal.SIGTERM, previous)
    prov = bundle.manifest.provenance
    m, size = prov["metrics"], prov["size"]
    labels = "" if m["dice_vs_labels"] is None else ", vs labels %.4f (teacher %.4f)" % (
        m["dice_vs_labels"], m["teacher_dice_vs_labels"])
    print("wrote %s: held-out Dice vs teacher %.4f on %d frames%s; %.1f%% of the teacher's bytes, %.1f%% of its "
          "MACs (%s runner)" % (bundle.path, m["dice_vs_teacher"], m["frames"], labels, 100 * size["bytes_ratio"],
                                100 * size["macs_ratio"], m["backend"]))
    return 0
