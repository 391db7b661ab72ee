"""Train a U-Net family model on labelled frames and write a bundle.

Frames come from any labelled source (``synthetic://...``, an image folder with ``images/`` and
``masks/``) through :func:`jetseg.jetson.sources.open_source`, and become model input through
:meth:`Spec.preprocess` / :meth:`Spec.preprocess_mask`, exactly as at run time. Loss: cross-entropy plus
soft Dice over the foreground classes. The held-out set (other seeds for synthetic data, the last files of
a folder) is scored with the project's Dice (:mod:`jetseg.scores`), on the PyTorch model
during training and on the exported ONNX model through the ``onnxrt`` runner at the end.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.bundle import (
    WEIGHTS_FILE,
    Bundle,
    BundleLike,
    check_out,
    command_line,
    save_bundle,
    staged_bundle,
    uri_path,
)
from jetseg.spec import Spec
from jetseg.training.data import (
    Dataset,
    TrainError,
    held_out_uri,
    input_section,
    read_frames,
    split_tail,
    synthetic_kind,
)

if TYPE_CHECKING:
    from jetseg.evaluate import Outputs

log = logging.getLogger("jetseg.train")


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in the bundle's provenance)."""

    data: str
    arch: str = "unet-small"
    out: str = "model-bundle"
    input_size: Tuple[int, int] = (160, 160)
    steps: int = 1000
    epochs: Optional[int] = None  # if given, overrides steps: epochs * ceil(train frames / batch)
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0
    frames: int = 2400  # training frames kept (synthetic sources are endless)
    every: Optional[int] = None  # keep every k-th training frame; default 4 for synthetic streams, else 1
    val_data: Optional[str] = None
    val_frames: int = 200
    val_every: Optional[int] = None  # default 10 for synthetic streams, else 1
    val_fraction: float = 0.2  # finite sources without --val-data: the last fraction is held out
    eval_interval: int = 200
    classes: Optional[List[str]] = None
    channels: Optional[int] = None
    threads: int = 0  # inference threads of the runner scoring the held-out frames (0: jetseg's default)
    train_threads: int = 0  # PyTorch's threads for the training loop (0: jetseg's default), not a runner's
    arch_kwargs: Dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False
    task: str = "segmentation"  # or registration (training/registration.py)


def make_spec(cfg: TrainConfig, sample: Any, name: str) -> Spec:
    """The bundle's spec from the first frame: channels, classes, ROI (the synthetic field of view)."""
    classes = cfg.classes or sample.meta.get("classes") or ["background", "target"]
    return Spec.from_dict({
        "name": name, "task": "segmentation",
        "input": input_section(cfg.input_size, input_channels(cfg, sample), sample.meta.get("roi")),
        "output": {"name": "logits", "kind": "softmax"},
        "classes": list(classes),
        "description": "trained by jetseg train on %s" % cfg.data,
    })


def input_channels(cfg: TrainConfig, sample: Any) -> int:
    """``--channels``, else 3 for synthetic endoscopy and 1 for the other synthetic kinds, else 1 for grey data
    (grey frames, or BGR frames with equal channels) and 3 for colour."""
    kind = synthetic_kind(cfg.data)
    if cfg.channels is not None:
        return cfg.channels
    if kind is not None:
        return 3 if kind == "endoscopy" else 1
    image = sample.image
    return 1 if image.ndim == 2 or (image.ndim == 3 and _is_grey(image)) else 3


def _is_grey(image: np.ndarray) -> bool:
    step = max(1, image.shape[0] // 64)
    sub = image[::step, ::step]
    return bool(np.array_equal(sub[..., 0], sub[..., 1]) and np.array_equal(sub[..., 1], sub[..., 2]))


def _normalise(spec: Spec, sets: List[Dataset]) -> Spec:
    """Measure mean/std on the first (training) set, rounded; normalise every set in place; return the spec."""
    train = sets[0].x
    sample = train[:: max(1, len(train) // 256)].astype(np.float32)
    mean = [round(float(v), 3) for v in sample.mean(axis=(0, 2, 3))]
    std = [max(0.01, round(float(v), 3)) for v in sample.std(axis=(0, 2, 3))]
    m = np.asarray(mean, np.float32)[None, :, None, None]
    sd = np.asarray(std, np.float32)[None, :, None, None]
    for data in sets:  # float16 keeps the training set small; held-out sets stay float32
        data.x = ((data.x.astype(np.float32) - m) / sd).astype(data.x.dtype)
    out = spec.to_dict()
    out["input"]["mean"], out["input"]["std"] = mean, std
    return Spec.from_dict(out)


def default_val_uri(cfg: TrainConfig) -> Optional[str]:
    """Synthetic data: the same kind from seed + 1000 (other "patients"); otherwise None (split)."""
    return held_out_uri(cfg.data, cfg.val_frames, cfg.val_every or 10)


# ---------------------------------------------------------------------------------------------- training
def train(cfg: TrainConfig) -> Bundle:
    """Run a training job described by ``cfg`` and write the bundle to ``cfg.out``."""
    from jetseg.optional import require

    if cfg.task == "registration":
        from jetseg.training.registration import train_registration

        return train_registration(cfg)

    torch = require("torch", "training")
    from jetseg.models.archs import ARCHITECTURES, REGISTRATION_ARCHS, build_model, describe
    from jetseg.models.export import compare_with_torch, torch_to_onnx
    from jetseg.scores import mean_dice
    from jetseg.training.augment import Augment
    from jetseg.training.card import model_card
    from jetseg.training.loop import fit, predict, state_bytes, use_training_threads
    from jetseg.training.losses import dice_ce_loss

    ARCHITECTURES.check(cfg.arch)
    if cfg.arch in REGISTRATION_ARCHS:
        raise TrainError("--arch %s is a registration model; add --task registration" % cfg.arch)
    data_inputs = [uri_path(cfg.data), uri_path(cfg.val_data)]
    check_out(cfg.out, cfg.overwrite, data_inputs)
    train_threads = use_training_threads(cfg.train_threads)
    torch.manual_seed(cfg.seed)
    started = time.time()

    val_uri = cfg.val_data or default_val_uri(cfg)
    every = cfg.every or (4 if synthetic_kind(cfg.data) else 1)
    train_set, spec = read_frames(cfg.data, cfg.frames, every, None,
                            lambda frame: make_spec(cfg, frame, Path(cfg.out).name))
    if val_uri is None:
        train_set, val_set = split_tail(train_set, cfg.val_fraction)
        val_desc = val_set.uri
    else:
        val_every = cfg.val_every or (10 if synthetic_kind(val_uri) else 1)
        val_set, _ = read_frames(val_uri, cfg.val_frames, val_every, spec, dtype=np.float32)
        val_desc = val_uri
    spec = _normalise(spec, [train_set, val_set])
    kwargs = dict(cfg.arch_kwargs)
    kwargs.update(input_size=list(spec.input.size), in_channels=spec.input.channels,
                  num_classes=spec.num_classes)
    model = build_model(cfg.arch, **kwargs)
    n = len(train_set.x)
    steps = cfg.steps if cfg.epochs is None else cfg.epochs * int(math.ceil(n / float(cfg.batch)))
    if steps < 1:
        raise TrainError("nothing to train: %d steps; give --steps or --epochs >= 1" % steps)
    kind = synthetic_kind(cfg.data) or ""
    augment = Augment.for_kind(kind)
    gen = torch.Generator().manual_seed(cfg.seed)
    assert train_set.y is not None and val_set.y is not None  # labels="required"
    train_y, val_y = train_set.y, val_set.y

    def step_loss(idx: np.ndarray) -> Any:
        x = torch.from_numpy(train_set.x[idx].astype(np.float32))
        y = torch.from_numpy(train_y[idx].astype(np.int64))
        x, y = augment(x, y, gen)
        return dice_ce_loss(model(x), y, spec.num_classes)

    def val_dice() -> float:
        return mean_dice(spec.decode(predict(model, val_set.x)), val_y, spec.num_classes)

    result = fit(model, step_loss, val_dice, n=n, steps=steps, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed,
                 eval_interval=cfg.eval_interval, desc="train " + cfg.arch)
    onnx_bytes = torch_to_onnx(model, spec)
    max_diff = compare_with_torch(model, onnx_bytes, spec)
    weights = state_bytes(model)
    arch_record = describe(cfg.arch, kwargs)
    provenance: Dict[str, Any] = {
        "command": command_line(),
        "tool": "jetseg train",
        "architecture": arch_record,
        "data": {
            "train": {"uri": cfg.data, "frames_used": int(len(train_set.x)), "frames_read": train_set.read,
                      "every": every, "sha256": train_set.sha256},
            "validation": {"uri": val_desc, "frames_used": int(len(val_set.x)), "sha256": val_set.sha256},
        },
        "training": {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")},
        "history": result.history,
        "best_step": result.best_step,
        "onnx_max_abs_diff_vs_torch": max_diff,
        "seconds": round(time.time() - started, 1),
    }
    provenance["training"]["steps_run"] = steps
    provenance["training"]["train_threads_used"] = train_threads
    provenance["training"]["augment"] = asdict(augment)
    # The held-out Dice of the artifact that ships: the exported ONNX model through the onnxrt runner.
    parent = Path(cfg.out).resolve().parent
    with staged_bundle(onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights}, provenance=provenance,
                       parent=parent, prefix=".jetseg-train-") as exported:
        metrics = evaluate_bundle(exported, val_set, threads=cfg.threads)
    provenance["metrics"] = metrics
    card = model_card(spec, provenance, model)
    bundle = save_bundle(cfg.out, onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights, "MODEL_CARD.md": card},
                         provenance=provenance, overwrite=cfg.overwrite, inputs=data_inputs)
    log.info("wrote %s: held-out Dice %.4f (onnxrt)", cfg.out, metrics["dice"])
    return bundle


def run_held_out(bundle: BundleLike, data: Dataset, backend: str = "onnxrt", threads: int = 0) -> Outputs:
    """The bundle's outputs and masks on the preprocessed frames ``data.x``, one frame at a time through a runner
    with ``threads`` inference threads (0: jetseg's default; the run-time path of :mod:`jetseg.evaluate`)."""
    from jetseg import evaluate
    from jetseg.jetson.runners import open_runner

    with open_runner(backend, bundle, threads=threads) as runner:
        return evaluate.run_inputs(runner.spec, runner.infer, [data.x[i:i + 1] for i in range(len(data.x))])


def evaluate_bundle(bundle: BundleLike, data: Dataset, backend: str = "onnxrt", threads: int = 0) -> Dict[str, Any]:
    """Held-out Dice of a bundle run through a runner (``threads``: its inference threads, 0: jetseg's default)
    on preprocessed frames (model resolution), scored by the one evaluation path (:mod:`jetseg.evaluate`)."""
    from jetseg import evaluate

    if data.y is None:
        raise TrainError("held-out data %s has no masks; evaluation needs labelled frames" % data.uri)
    outputs = run_held_out(bundle, data, backend, threads)
    spec = outputs.spec
    vs_labels = evaluate.score(outputs, None, list(data.y))["vs_labels"]
    per_class = {name: round(float(v["dice"]) if v["dice"] is not None else float("nan"), 4)
                 for name, v in vs_labels["per_class"].items()}
    return {"dice": round(evaluate.dice_or_one(vs_labels), 4), "per_class": per_class,
            "frames": int(len(outputs.masks)), "backend": backend, "data": data.uri,
            "resolution": "model input (%dx%d), labels via Spec.preprocess_mask" % tuple(spec.input.size)}
