"""`jetseg train`: train a U-Net family model on labelled frames and write a bundle."""
from __future__ import annotations

import argparse
import math
from typing import Dict, List, Optional, Tuple

from jetseg.bundle import OVERWRITE_HELP
from jetseg.errors import JetsegError

HELP = "train a segmentation model (U-Net family) on labelled scans, or a denoiser on noisy/clean pairs, and write a bundle"


def parse_size(text: str) -> Tuple[int, int]:
    """``HxW`` (or one number for a square) -> (height, width)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise JetsegError("input size %r is invalid; expected HxW such as 160x160" % text)
    return values[0], values[1]


def parse_classes(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    names = [c.strip() for c in text.split(",") if c.strip()]
    if len(names) < 2:
        raise JetsegError("--classes %r is invalid; expected at least two names, background first, e.g. "
                          "background,lesion" % text)
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetseg.models.archs import ARCHITECTURES

    parser.add_argument("--task", choices=("segmentation", "enhancement", "registration"), default="segmentation",
                        help="what the model does (default segmentation; enhancement: a denoiser; registration: "
                             "moving + fixed -> displacement field, trained on synthetic deformations of the "
                             "frames; docs/tasks.md)")
    parser.add_argument("--data", required=True, metavar="DIR|URI",
                        help="labelled frames: a folder with images/ and masks/, or synthetic://ultrasound?frames=N; "
                             "enhancement: noisy/clean pairs, a folder with images/ and clean/, or "
                             "synthetic://ultrasound?noise=speckle&frames=N; registration: frames")
    parser.add_argument("--arch", default=None,
                        help="architecture (%s; default unet-small, unet-denoise for enhancement, vxm-small for "
                             "registration)"
                             % ", ".join(ARCHITECTURES.names()))
    parser.add_argument("--out", required=True, metavar="BUNDLE", help="bundle directory to write")
    parser.add_argument("--input-size", default=None, metavar="HxW",
                        help="model input size, multiples of 2**depth (default 160x160; 128x128 for enhancement)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training frames (overrides --steps)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, one-cycle (default 0.002)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for initialisation, order, augmentation")
    parser.add_argument("--frames", type=int, default=2400,
                        help="training frames kept from the source (default 2400)")
    parser.add_argument("--every", type=int, default=None,
                        help="keep every k-th frame of the training stream (default 4 for synthetic data, else 1)")
    parser.add_argument("--val-data", default=None, metavar="URI",
                        help="held-out frames (default: synthetic data from seed+1000; a folder: its last "
                             "--val-fraction of files)")
    parser.add_argument("--val-frames", type=int, default=200, help="held-out frames (default 200)")
    parser.add_argument("--val-every", type=int, default=None,
                        help="keep every k-th held-out frame (default 10 for synthetic data, else 1)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of a finite source held out when no --val-data is given (default 0.2)")
    parser.add_argument("--eval-interval", type=int, default=200, help="steps between held-out evaluations")
    parser.add_argument("--classes", default=None, help="class names, background first (default: from the data)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None,
                        help="model input channels (default: 1 for grey data, 3 for colour)")
    parser.add_argument("--depth", type=int, default=None, help="U-Net depth (architecture default if omitted)")
    parser.add_argument("--base-width", type=int, default=None, help="U-Net base width (architecture default)")
    add_thread_arguments(parser, "the runner that scores the exported model on the held-out frames")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    enh = parser.add_argument_group("enhancement (--task enhancement)")
    enh.add_argument("--loss", choices=("l1", "mse"), default="l1", help="pixel loss (default l1)")
    enh.add_argument("--ssim-weight", type=float, default=0.0, help="weight of an added 1 - SSIM loss (default 0)")
    enh.add_argument("--adversarial", action="store_true",
                     help="add a least-squares GAN loss with a small discriminator (off by default)")
    enh.add_argument("--adv-weight", type=float, default=0.01, help="weight of the adversarial loss (default 0.01)")
    enh.add_argument("--patch", type=int, default=64, metavar="N",
                     help="train on random NxN crops of the inputs (default 64; 0: whole inputs)")


def add_thread_arguments(parser: argparse.ArgumentParser, runner: str) -> None:
    """``--threads`` (a runner's inference threads, as everywhere) and ``--train-threads`` (PyTorch's threads for
    the training loop): ``jetseg train`` and ``jetseg distill`` take both."""
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="inference threads of %s, applied when it computes on the CPU (default 0: jetseg's "
                             "default, usable cores - 1; docs/runtime.md, Threads)" % runner)
    parser.add_argument("--train-threads", type=int, default=0, metavar="N",
                        help="PyTorch threads of the training loop, not inference (default 0: jetseg's default, "
                             "usable cores - 1)")


def check_loop_options(args: argparse.Namespace) -> None:
    """The options ``jetseg train`` and ``jetseg distill`` share: counts, threads, --val-fraction, --lr (one-line
    errors)."""
    for name in ("steps", "batch", "frames", "every", "val_frames", "val_every", "eval_interval"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise JetsegError("--%s %d is invalid; expected a positive integer" % (name.replace("_", "-"), value))
    for name in ("threads", "train_threads"):
        value = getattr(args, name)
        if value < 0:
            raise JetsegError("--%s %d is invalid; expected 0 (jetseg's default) or a positive integer"
                              % (name.replace("_", "-"), value))
    if not 0.0 < args.val_fraction < 1.0:
        raise JetsegError("--val-fraction %g is invalid; expected a number between 0 and 1" % args.val_fraction)
    if not 0 < args.lr < math.inf:
        raise JetsegError("--lr %g is invalid; expected a positive number" % args.lr)


def unet_kwargs(args: argparse.Namespace) -> Dict[str, int]:
    """Architecture keyword arguments from --depth / --base-width (only those given)."""
    return {k: getattr(args, k) for k in ("depth", "base_width") if getattr(args, k) is not None}


def run(args: argparse.Namespace) -> int:
    from jetseg.training.train import TrainConfig, train

    check_loop_options(args)
    if args.epochs is not None and args.epochs < 1:
        raise JetsegError("--epochs %d is invalid; expected a positive integer" % args.epochs)
    if args.task == "enhancement":
        return run_enhancement(args)
    arch_kwargs = unet_kwargs(args)
    arch = args.arch or ("vxm-small" if args.task == "registration" else "unet-small")
    cfg = TrainConfig(data=args.data, arch=arch, task=args.task, out=args.out,
                      input_size=parse_size(args.input_size or "160x160"),
                      steps=args.steps, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                      frames=args.frames, every=args.every, val_data=args.val_data, val_frames=args.val_frames,
                      val_every=args.val_every, val_fraction=args.val_fraction, eval_interval=args.eval_interval,
                      classes=parse_classes(args.classes), channels=args.channels, threads=args.threads,
                      train_threads=args.train_threads, arch_kwargs=arch_kwargs, overwrite=args.overwrite)
    bundle = train(cfg)
    metrics = bundle.manifest.provenance.get("metrics", {})
    if args.task == "registration":
        print("wrote %s (held-out EPE mean %.3f px, p95 %.3f px on %d pairs, %s runner)"
              % (bundle.path, metrics["epe_mean"], metrics["epe_p95"], metrics["pairs"], metrics["backend"]))
        return 0
    print("wrote %s (held-out Dice %.4f on %d frames, %s runner)"
          % (bundle.path, metrics.get("dice", float("nan")), metrics.get("frames", 0), metrics.get("backend", "?")))
    return 0


def run_enhancement(args: argparse.Namespace) -> int:
    """``--task enhancement``: a denoiser on noisy/clean pairs (:mod:`jetseg.training.enhance`)."""
    from jetseg.training.enhance import EnhanceConfig, train_enhancement

    if args.patch < 0:
        raise JetsegError("--patch %d is invalid; expected 0 (whole inputs) or a crop size such as 64" % args.patch)
    for name in ("ssim_weight", "adv_weight"):
        if not 0.0 <= getattr(args, name) < math.inf:
            raise JetsegError("--%s %g is invalid; expected 0 or a positive number"
                              % (name.replace("_", "-"), getattr(args, name)))
    if args.classes is not None:
        raise JetsegError("--classes is for segmentation; an enhancement model outputs an image (drop --classes)")
    cfg = EnhanceConfig(data=args.data, arch=args.arch or "unet-denoise", out=args.out,
                        input_size=parse_size(args.input_size or "128x128"), steps=args.steps, epochs=args.epochs,
                        batch=args.batch, lr=args.lr, seed=args.seed, frames=args.frames, every=args.every,
                        val_data=args.val_data, val_frames=args.val_frames, val_every=args.val_every,
                        val_fraction=args.val_fraction, eval_interval=args.eval_interval, channels=args.channels,
                        threads=args.threads, train_threads=args.train_threads, arch_kwargs=unet_kwargs(args),
                        overwrite=args.overwrite, loss=args.loss, ssim_weight=args.ssim_weight,
                        adversarial=args.adversarial, adv_weight=args.adv_weight, patch=args.patch)
    bundle = train_enhancement(cfg)
    metrics = bundle.manifest.provenance.get("metrics", {})
    print("wrote %s (held-out PSNR %.2f dB, SSIM %.4f on %d frames, %s runner; noisy input %.2f dB)"
          % (bundle.path, metrics["psnr"], metrics["ssim"], metrics["frames"], metrics["backend"],
             metrics["input"]["psnr"]))
    return 0
