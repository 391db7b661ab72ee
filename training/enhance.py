"""``jetseg train --task enhancement``: train a denoiser on noisy/clean pairs and write an enhancement bundle.

Pairs come from any source whose frames carry ``frame.meta["clean"]`` (``synthetic://ultrasound?noise=speckle``,
``synthetic://ct?noise=lowdose``, an image folder with ``images/`` and ``clean/``; docs/tasks.md). The noisy
frame becomes model input through :meth:`Spec.preprocess` (mean 0, std 1: the input is the image in [0, 1]);
the clean frame becomes the target through :func:`jetseg.tasks.clean_target`, the same function calibrate and
bench score against. Loss: L1 or MSE, plus ``ssim_weight`` x (1 - SSIM), plus ``adv_weight`` x a least-squares
GAN loss with a small discriminator when ``adversarial`` is set. The held-out frames (other seeds for
synthetic data, the last files of a folder) pick the best step by PSNR, and at the end the exported ONNX model
is scored through the ``onnxrt`` runner (PSNR/SSIM against the clean targets, and the noisy input's for
comparison).
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.bundle import WEIGHTS_FILE, Bundle, check_out, command_line, save_bundle, staged_bundle, uri_path
from jetseg.spec import Spec
from jetseg.training.data import TrainError, every_kth, held_out_uri, input_section, synthetic_kind
from jetseg.training.train import TrainConfig

log = logging.getLogger("jetseg.train")

#: architectures that map an image to an image of the same channels
ENHANCEMENT_ARCHS = ("unet-denoise",)


@dataclass
class EnhanceConfig(TrainConfig):
    """A training run of an enhancement model: :class:`TrainConfig` and the losses."""

    arch: str = "unet-denoise"
    input_size: Tuple[int, int] = (128, 128)
    loss: str = "l1"  # pixel loss: l1 or mse
    ssim_weight: float = 0.0  # weight of (1 - SSIM)
    adversarial: bool = False  # add a least-squares GAN loss with a small PatchGAN discriminator
    adv_weight: float = 0.01
    patch: int = 64  # train on random patch x patch crops (the model is fully convolutional); 0: whole inputs


@dataclass
class Pairs:
    """Preprocessed noisy inputs ``x`` and clean targets ``t``, both ``(N, C, H, W)`` in [0, 1]."""

    x: np.ndarray
    t: np.ndarray
    uri: str
    sha256: str
    read: int


def make_spec(cfg: EnhanceConfig, sample: Any, name: str) -> Spec:
    """The bundle's spec from the first frame: channels, the ROI (the synthetic field of view), area resizing."""
    from jetseg.training.train import input_channels

    channels = input_channels(cfg, sample)
    return Spec.from_dict({
        "name": name, "task": "enhancement",
        "input": dict(input_section(cfg.input_size, channels, sample.meta.get("roi")), interpolation="area"),
        "output": {"name": "enhanced"},
        "enhancement": {"channels": channels, "range": [0.0, 1.0]},
        "description": "denoiser trained by jetseg train --task enhancement on %s" % cfg.data,
    })


def held_out_pairs_uri(uri: str, frames: int, every: int) -> Optional[str]:
    """Synthetic data: the same kind and noise from seed + 1000 (other "patients"); otherwise None (split)."""
    held = held_out_uri(uri, frames, every)
    if held is None:
        return None
    from jetseg.jetson.sources import parse_uri

    query = parse_uri(uri)[2]
    return held + "".join("&%s=%s" % (k, query[k]) for k in ("noise", "level") if k in query)


def read_pairs(uri: str, limit: Optional[int], every: int, spec: Optional[Spec], cfg: EnhanceConfig,
               name: str = "") -> Tuple[Pairs, Spec]:
    """Noisy/clean pairs from ``uri`` (every ``every``-th frame, up to ``limit``), preprocessed as they arrive."""
    from jetseg.tasks import clean_target

    digest = hashlib.sha256()
    xs: List[np.ndarray] = []
    ts: List[np.ndarray] = []
    counts = {"read": 0}
    for frame, keep in every_kth(uri, limit, every, counts):
        clean = (frame.meta or {}).get("clean")
        if clean is None:
            raise TrainError("frame %s of %s has no clean target; enhancement training needs noisy/clean pairs "
                             "(synthetic://ultrasound?noise=speckle, synthetic://ct?noise=lowdose, or a folder "
                             "with images/ and clean/)" % (frame.source_id or frame.index, uri))
        if keep:
            if spec is None:
                spec = make_spec(cfg, frame, name)
            box = spec.roi_for(frame.image.shape)
            digest.update(np.ascontiguousarray(frame.image).tobytes())
            digest.update(np.ascontiguousarray(clean).tobytes())
            xs.append(spec.preprocess(frame.image, roi=box).astype(np.float16))
            ts.append(clean_target(spec, clean, box)[None].astype(np.float16))
    read = counts["read"]
    if not xs or spec is None:
        raise TrainError("source %s delivered no frames" % uri)
    return Pairs(x=np.concatenate(xs), t=np.concatenate(ts), uri=uri, sha256=digest.hexdigest(), read=read), spec


def split_pairs(data: Pairs, fraction: float, minimum: int = 5) -> Tuple[Pairs, Pairs]:
    """Hold out the last ``fraction`` of a finite source's pairs."""
    total = len(data.x)
    if total < minimum:
        raise TrainError("%s has %d frames; at least %d are needed to hold some out" % (data.uri, total, minimum))
    n = max(1, int(round(total * fraction)))
    tail = Pairs(x=data.x[-n:], t=data.t[-n:], uri="%s (last %d frames held out)" % (data.uri, n),
                 sha256=data.sha256, read=n)
    return Pairs(x=data.x[:-n], t=data.t[:-n], uri=data.uri, sha256=data.sha256, read=data.read), tail


def image_scores(outputs: np.ndarray, targets: np.ndarray) -> Dict[str, Any]:
    """Mean PSNR/SSIM of ``(N, C, H, W)`` images in [0, 1] against their targets (:mod:`jetseg.imagescores`)."""
    from jetseg.imagescores import ImageScores

    scores = ImageScores(data_range=1.0)
    for out, ref in zip(outputs, targets):
        scores.add(np.clip(out.astype(np.float32), 0.0, 1.0), ref.astype(np.float32))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.summary().items()}


def train_enhancement(cfg: EnhanceConfig) -> Bundle:
    """Run an enhancement training job described by ``cfg`` and write the bundle to ``cfg.out``."""
    from jetseg.optional import require

    torch = require("torch", "training")
    from jetseg.models.archs import ARCHITECTURES, build_model, describe
    from jetseg.models.export import compare_with_torch, torch_to_onnx
    from jetseg.training.enhance_card import enhancement_card
    from jetseg.training.enhance_losses import PIXEL_LOSSES, Adversarial, pixel_loss, ssim_loss
    from jetseg.training.loop import fit, predict, state_bytes, use_training_threads

    ARCHITECTURES.check(cfg.arch)
    if cfg.arch not in ENHANCEMENT_ARCHS:
        raise TrainError("--arch %s is a segmentation architecture; --task enhancement takes %s"
                         % (cfg.arch, " or ".join(ENHANCEMENT_ARCHS)))
    if cfg.loss not in PIXEL_LOSSES:
        raise TrainError("--loss %s is unknown; expected %s" % (cfg.loss, " or ".join(PIXEL_LOSSES)))
    data_inputs = [uri_path(cfg.data), uri_path(cfg.val_data)]
    check_out(cfg.out, cfg.overwrite, data_inputs)
    train_threads = use_training_threads(cfg.train_threads)
    torch.manual_seed(cfg.seed)
    started = time.time()
    every = cfg.every or (4 if synthetic_kind(cfg.data) else 1)
    train_set, spec = read_pairs(cfg.data, cfg.frames, every, None, cfg, Path(cfg.out).name)
    val_uri = cfg.val_data or held_out_pairs_uri(cfg.data, cfg.val_frames, cfg.val_every or 10)
    if val_uri is None:
        train_set, val_set = split_pairs(train_set, cfg.val_fraction)
    else:
        val_every = cfg.val_every or (10 if synthetic_kind(val_uri) else 1)
        val_set, _ = read_pairs(val_uri, cfg.val_frames, val_every, spec, cfg)
    channels = spec.input.channels
    kwargs = dict(cfg.arch_kwargs)
    kwargs.update(input_size=list(spec.input.size), in_channels=channels, num_classes=channels)
    model = build_model(cfg.arch, **kwargs)
    n = len(train_set.x)
    steps = cfg.steps if cfg.epochs is None else cfg.epochs * int(math.ceil(n / float(cfg.batch)))
    if steps < 1:
        raise TrainError("nothing to train: %d steps; give --steps or --epochs >= 1" % steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    adversary = Adversarial(channels) if cfg.adversarial else None
    val_x, val_t = val_set.x.astype(np.float32), val_set.t.astype(np.float32)
    height, width = (int(v) for v in spec.input.size)
    patch = cfg.patch if 0 < cfg.patch < min(height, width) else 0
    if patch and patch % (2 ** int(model.config["depth"])):
        raise TrainError("--patch %d is not a multiple of %d (2**depth); choose e.g. 64" % (patch, 2 ** model.config["depth"]))

    def step_loss(idx: np.ndarray) -> Any:
        x, t = train_set.x[idx], train_set.t[idx]
        if patch:  # one random window per batch, the same for input and target
            y0, x0 = (int(v) for v in torch.randint(0, 1 << 30, (2,), generator=gen))
            y0, x0 = y0 % (height - patch + 1), x0 % (width - patch + 1)
            x, t = x[..., y0:y0 + patch, x0:x0 + patch], t[..., y0:y0 + patch, x0:x0 + patch]
        x, t = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(t.astype(np.float32))
        flip = torch.rand(len(idx), generator=gen) < 0.5  # left-right mirror, the same for input and target
        x[flip], t[flip] = x[flip].flip(-1), t[flip].flip(-1)
        out = model(x)
        loss = pixel_loss(out, t, cfg.loss)
        if cfg.ssim_weight > 0:
            loss = loss + cfg.ssim_weight * ssim_loss(out, t)
        if adversary is not None:
            loss = loss + cfg.adv_weight * adversary.generator_loss(out, t)
        return loss

    def val_psnr() -> float:
        return float(image_scores(predict(model, val_x), val_t)["psnr"])

    result = fit(model, step_loss, val_psnr, n=n, steps=steps, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed,
                 eval_interval=cfg.eval_interval, desc="train " + cfg.arch, score_name="val_psnr")
    onnx_bytes = torch_to_onnx(model, spec)
    max_diff = compare_with_torch(model, onnx_bytes, spec)
    weights = state_bytes(model)
    provenance: Dict[str, Any] = {
        "command": command_line(), "tool": "jetseg train", "task": "enhancement",
        "architecture": describe(cfg.arch, kwargs),
        "data": {
            "train": {"uri": cfg.data, "frames_used": int(n), "frames_read": train_set.read, "every": every,
                      "sha256": train_set.sha256},
            "validation": {"uri": val_set.uri, "frames_used": int(len(val_set.x)), "sha256": val_set.sha256},
        },
        "training": {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite", "classes")},
        "history": result.history, "best_step": result.best_step,
        "onnx_max_abs_diff_vs_torch": max_diff, "seconds": round(time.time() - started, 1),
    }
    provenance["training"].update(steps_run=steps, train_threads_used=train_threads, augment="left-right flip",
                                  patch_used=patch)
    parent = Path(cfg.out).resolve().parent
    with staged_bundle(onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights}, provenance=provenance,
                       parent=parent, prefix=".jetseg-train-") as exported:
        metrics = evaluate_enhancement(exported, val_x, val_t, val_set.uri, threads=cfg.threads)
    provenance["metrics"] = metrics
    card = enhancement_card(spec, provenance, model)
    bundle = save_bundle(cfg.out, onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights, "MODEL_CARD.md": card},
                         provenance=provenance, overwrite=cfg.overwrite, inputs=data_inputs)
    log.info("wrote %s: held-out PSNR %.2f dB (noisy input %.2f dB)", cfg.out, metrics["psnr"],
             metrics["input"]["psnr"])
    return bundle


def evaluate_enhancement(bundle: Any, x: np.ndarray, targets: np.ndarray, uri: str, backend: str = "onnxrt",
                         threads: int = 0) -> Dict[str, Any]:
    """Held-out PSNR/SSIM of a bundle's images (through a runner, read by :func:`jetseg.tasks.enhanced_images`)
    against the clean ``targets``, and of the noisy input itself (what the model improves on)."""
    from jetseg import evaluate
    from jetseg.jetson.runners import open_runner
    from jetseg.tasks import enhanced_images

    with open_runner(backend, bundle, threads=threads) as runner:
        outputs = evaluate.run_inputs(runner.spec, runner.infer, [x[i:i + 1] for i in range(len(x))])
        enhancement = runner.spec.enhancement
    assert enhancement is not None, "an enhancement spec has its section (filled with defaults)"
    images = np.concatenate([enhanced_images(o, enhancement) for o in outputs.outputs])
    model = image_scores(images, targets)
    noisy = image_scores(x, targets)
    return {"psnr": model["psnr"], "ssim": model["ssim"], "psnr_min": model["psnr_min"],
            "ssim_min": model["ssim_min"], "input": {"psnr": noisy["psnr"], "ssim": noisy["ssim"]},
            "frames": int(len(x)), "backend": backend, "data": uri,
            "resolution": "model input (%dx%d), targets via jetseg.tasks.clean_target" % tuple(x.shape[-2:])}
