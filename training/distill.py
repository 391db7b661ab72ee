"""Knowledge distillation: fit a small student to a teacher bundle's outputs and write a bundle.

The teacher is any bundle, run through a runner of :mod:`jetseg.jetson.runners` (``onnxrt`` by default),
so no PyTorch teacher is needed. Its logits on the training frames become soft targets (temperature T):
KL divergence for a softmax output, binary cross-entropy for a sigmoid output (:mod:`jetseg.training.losses`),
plus a soft Dice against the teacher's probabilities (the foreground is a small part of a scan) and, with
``labels=True``, the usual loss against the scans' masks. Augmentation is training's (:mod:`.augment`): the
teacher's logits move with the image through the same sampling grid. Unlabelled scans are the usual case.

The student keeps the teacher's spec (input size, normalisation, ROI, classes, output kind), so it is a
drop-in replacement that calibrate, build, run and bench take as they are. Held-out frames (other seeds of a
synthetic source, or the last files of a folder) choose the best step and, separately, decide the gate:
below ``gate_dice`` mean Dice against the teacher, no bundle is written.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from jetseg.bundle import WEIGHTS_FILE, Bundle, check_out, command_line, save_bundle, uri_path
from jetseg.errors import GateError
from jetseg.evaluate import Outputs
from jetseg.spec import Spec
from jetseg.training.data import Dataset, TrainError, held_out_uri, read_frames, split_tail, synthetic_kind

log = logging.getLogger("jetseg.distill")

#: Student defaults that differ from the architecture's own (given --depth / --base-width win). unet-tiny at
#: depth 2 sees too little context for lesions at 160x160: on the bundled ultrasound teacher it reached Dice
#: vs teacher 0.94 on one held-out scene where depth 3 reached 0.97, for 4.8% instead of 3.4% of the MACs
#: (docs/distill.md).
STUDENT_DEFAULTS: Dict[str, Dict[str, Any]] = {"unet-tiny": {"depth": 3}}


@dataclass
class DistillConfig:
    """Everything that determines a distillation run (stored in the bundle's provenance)."""

    teacher: str
    scans: str
    student: str = "unet-tiny"
    out: str = "student-bundle"
    labels: bool = False  # also fit the scans' masks (every training frame must have one)
    label_weight: float = 0.5
    temperature: float = 2.0
    dice_weight: float = 1.0
    steps: int = 600
    batch: int = 8
    lr: float = 1e-2
    seed: int = 0
    frames: int = 1200  # training frames kept (synthetic sources are endless)
    every: Optional[int] = None  # keep every k-th frame; default 4 for synthetic streams, else 1
    val_scans: Optional[str] = None  # held out for choosing the step and for the report
    val_frames: int = 60
    val_every: Optional[int] = None  # default 10 for synthetic streams, else 1
    val_fraction: float = 0.2  # finite sources without val_scans: the last fraction is held out
    eval_interval: int = 100
    gate_dice: float = 0.95
    backend: str = "onnxrt"
    threads: int = 0  # inference threads of the teacher's and the student check's runners (0: jetseg's default)
    train_threads: int = 0  # PyTorch's threads for the training loop (0: jetseg's default), not a runner's
    arch_kwargs: Dict[str, Any] = field(default_factory=dict)
    overwrite: bool = False


@dataclass
class HeldOut:
    """A held-out set with the teacher's outputs and masks on it (scored as a reference by
    :func:`jetseg.evaluate.score`)."""

    data: Dataset
    teacher: Outputs
    teacher_masks: np.ndarray = field(init=False)  # (N, H, W) uint8

    def __post_init__(self) -> None:
        self.teacher_masks = np.stack(self.teacher.masks)


def inputs(cfg: DistillConfig) -> List[Optional[Path]]:
    """What the run reads: its --out may be none of these, nor hold one."""
    return [Path(cfg.teacher), uri_path(cfg.scans), uri_path(cfg.val_scans)]


def check_config(cfg: DistillConfig) -> None:
    """Refuse options that cannot work before any frame is read (TrainError, one line)."""
    from jetseg.models.archs import ARCHITECTURES, REGISTRATION_ARCHS

    ARCHITECTURES.check(cfg.student)
    if cfg.student in REGISTRATION_ARCHS:
        raise TrainError("--student %s is a registration model; jetseg distill makes segmentation students"
                         % cfg.student)
    if Path(cfg.out).resolve() == Path(cfg.teacher).resolve():
        raise TrainError("--out %s is the teacher bundle; choose another directory" % cfg.out)
    check_out(cfg.out, cfg.overwrite, inputs(cfg))
    if not 0 < cfg.temperature < math.inf:
        raise TrainError("--temperature %g is invalid; expected a positive number such as 2" % cfg.temperature)
    if not 0.0 <= cfg.gate_dice <= 1.0:
        raise TrainError("--gate-dice %g is invalid; expected a Dice between 0 and 1 (default 0.95)" % cfg.gate_dice)
    for name in ("label_weight", "dice_weight"):
        if not 0 <= getattr(cfg, name) < math.inf:
            raise TrainError("--%s %g is invalid; expected 0 or more" % (name.replace("_", "-"), getattr(cfg, name)))


def teacher_outputs(teacher: Bundle, x: np.ndarray, backend: str, threads: int, desc: str,
                    dtype: Any = np.float32) -> np.ndarray:
    """The teacher's raw outputs ``(N, K, H, W)`` (``dtype``) on preprocessed frames, through a runner with
    ``threads`` inference threads (applied when it computes on the CPU; 0: jetseg's default)."""
    from jetseg.jetson.runners import open_runner
    from jetseg.training.progress import bar

    batch = 8
    out = []
    with open_runner(backend, teacher, batch_size=batch, threads=threads) as runner, bar(total=len(x), desc=desc, unit="frame") as progress:
        for i in range(0, len(x), batch):
            chunk = x[i:i + batch].astype(np.float32)
            out.append(np.asarray(runner.infer(chunk), dtype=dtype))
            progress.update(len(chunk))
    return np.concatenate(out)


def held_out(teacher: Bundle, data: Dataset, cfg: DistillConfig, desc: str) -> HeldOut:
    """``data`` with the teacher's outputs on it, per frame as :func:`jetseg.evaluate.run_inputs` gives
    them (raw ``(1, K, H, W)`` and decoded masks)."""
    raw = teacher_outputs(teacher, data.x, cfg.backend, cfg.threads, desc)
    masks = teacher.spec.decode(raw)
    return HeldOut(data, Outputs(teacher.spec, [raw[i:i + 1] for i in range(len(raw))], list(masks)))


def _held_out_sets(cfg: DistillConfig, spec: Spec, train_set: Dataset) -> Tuple[Dataset, Dataset, Dataset]:
    """(training, selection, report) sets: other seeds for synthetic scans, else the tail of the source."""
    if cfg.val_scans:
        every = cfg.val_every or (10 if synthetic_kind(cfg.val_scans) else 1)
        held, _ = read_frames(cfg.val_scans, cfg.val_frames, every, spec, dtype=np.float32, labels="optional")
        select, report = split_tail(held, 0.5, "for the report", minimum=2)
        return train_set, select, report
    every = cfg.val_every or 10
    select_uri = held_out_uri(cfg.scans, cfg.val_frames, every, offset=1000)
    report_uri = held_out_uri(cfg.scans, cfg.val_frames, every, offset=2000)
    if select_uri is not None and report_uri is not None:
        select, _ = read_frames(select_uri, cfg.val_frames, every, spec, dtype=np.float32, labels="optional")
        report, _ = read_frames(report_uri, cfg.val_frames, every, spec, dtype=np.float32, labels="optional")
        return train_set, select, report
    train_set, held = split_tail(train_set, cfg.val_fraction)
    held.x = held.x.astype(np.float32)
    select, report = split_tail(held, 0.5, "for the report", minimum=2)
    return train_set, select, report


def distill(cfg: DistillConfig) -> Bundle:
    """Run the distillation described by ``cfg``; write the student bundle to ``cfg.out`` if it passes the gate.

    Raises:
        GateError: the student's held-out Dice against the teacher is below ``cfg.gate_dice`` (nothing written).
        TrainError: unusable options or data.
    """
    from jetseg.optional import require

    torch = require("torch", "distillation")
    from jetseg.models.archs import build_model, describe
    from jetseg.models.export import compare_with_torch, torch_to_onnx
    from jetseg.scores import mean_dice
    from jetseg.training.augment import Augment
    from jetseg.training.card import model_card
    from jetseg.training.distill_report import evaluate_student, sizes
    from jetseg.training.loop import fit, predict, state_bytes, use_training_threads
    from jetseg.training.losses import foreground_probabilities, label_loss, soft_dice_loss, soft_target_loss

    check_config(cfg)
    teacher = Bundle(cfg.teacher)
    spec = teacher.spec
    spec.require_task("jetseg distill", "segmentation")
    kind = spec.output.kind
    train_threads = use_training_threads(cfg.train_threads)
    torch.manual_seed(cfg.seed)
    started = time.time()

    every = cfg.every or (4 if synthetic_kind(cfg.scans) else 1)
    train_set, _ = read_frames(cfg.scans, cfg.frames, every, spec, labels="required" if cfg.labels else "optional")
    train_set, select_set, report_set = _held_out_sets(cfg, spec, train_set)
    if not cfg.labels:
        train_set.y = None  # labels are used only when asked for; held-out labels are still reported
    soft = teacher_outputs(teacher, train_set.x, cfg.backend, cfg.threads, "teacher", dtype=np.float16)
    select = held_out(teacher, select_set, cfg, "teacher (held out)")
    report = held_out(teacher, report_set, cfg, "teacher (report)")

    kwargs = dict(STUDENT_DEFAULTS.get(cfg.student, {}))
    kwargs.update(cfg.arch_kwargs)
    kwargs.update(input_size=list(spec.input.size), in_channels=spec.input.channels,
                  num_classes=spec.output_channels)
    model = build_model(cfg.student, **kwargs)
    augment = Augment.for_kind(synthetic_kind(cfg.scans) or "")
    gen = torch.Generator().manual_seed(cfg.seed)
    labels = train_set.y

    def step_loss(idx: np.ndarray) -> Any:
        x = torch.from_numpy(train_set.x[idx].astype(np.float32))
        t = torch.from_numpy(soft[idx].astype(np.float32))
        y = torch.from_numpy(labels[idx].astype(np.int64)) if labels is not None else None
        x, y, t = augment.apply(x, gen, y=y, soft=t)
        out = model(x)
        loss = soft_target_loss(out, t, kind, cfg.temperature)
        if cfg.dice_weight:
            loss = loss + cfg.dice_weight * soft_dice_loss(foreground_probabilities(out, kind),
                                                           foreground_probabilities(t, kind))
        if y is not None and cfg.label_weight:
            loss = loss + cfg.label_weight * label_loss(out, y, kind, spec.num_classes)
        return loss

    def dice_vs_teacher() -> float:
        return mean_dice(spec.decode(predict(model, select.data.x)), select.teacher_masks, spec.num_classes)

    log.info("distilling %s into %s: %d steps on %d frames", teacher.name, cfg.student, cfg.steps, len(train_set.x))
    result = fit(model, step_loss, dice_vs_teacher, n=len(train_set.x), steps=cfg.steps, batch=cfg.batch,
                 lr=cfg.lr, seed=cfg.seed, eval_interval=cfg.eval_interval, desc="distill " + cfg.student,
                 score_name="dice_vs_teacher")
    out_spec = _student_spec(spec, Path(cfg.out).name, cfg)
    onnx_bytes = torch_to_onnx(model, out_spec)
    weights = state_bytes(model)
    provenance: Dict[str, Any] = {
        "command": command_line(),
        "tool": "jetseg distill",
        "architecture": describe(cfg.student, kwargs),
        "teacher": {"path": str(teacher.path), "name": teacher.name, "model_sha256": teacher.model_sha256},
        "data": {
            "train": {"uri": cfg.scans, "frames_used": int(len(train_set.x)), "frames_read": train_set.read,
                      "every": every, "sha256": train_set.sha256, "labels_used": labels is not None},
            "selection": {"uri": select_set.uri, "frames_used": int(len(select_set.x)), "sha256": select_set.sha256},
            "report": {"uri": report_set.uri, "frames_used": int(len(report_set.x)), "sha256": report_set.sha256},
        },
        "distillation": {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")},
        "history": result.history,
        "best_step": result.best_step,
        "onnx_max_abs_diff_vs_torch": compare_with_torch(model, onnx_bytes, out_spec),
    }
    provenance["distillation"]["augment"] = asdict(augment)
    provenance["distillation"]["train_threads_used"] = train_threads
    metrics = evaluate_student(onnx_bytes, out_spec, weights, provenance, teacher, report, cfg.backend, cfg.threads)
    provenance["metrics"] = metrics
    provenance["size"] = sizes(teacher, onnx_bytes)
    provenance["seconds"] = round(time.time() - started, 1)
    if metrics["dice_vs_teacher"] < cfg.gate_dice:
        raise GateError("student Dice vs teacher %.4f on %d held-out frames is below the gate %.2f; no bundle "
                        "written (train longer with --steps, use a wider --student or --base-width, or lower "
                        "--gate-dice)" % (metrics["dice_vs_teacher"], metrics["frames"], cfg.gate_dice))
    card = model_card(out_spec, provenance, model)
    bundle = save_bundle(cfg.out, onnx_bytes, out_spec, extra_files={WEIGHTS_FILE: weights, "MODEL_CARD.md": card},
                         provenance=provenance, overwrite=cfg.overwrite, inputs=inputs(cfg))
    log.info("wrote %s: Dice vs teacher %.4f", cfg.out, metrics["dice_vs_teacher"])
    return bundle


def _student_spec(spec: Spec, name: str, cfg: DistillConfig) -> Spec:
    data = spec.to_dict()
    data["name"] = name
    data["description"] = "distilled by jetseg distill from %s (%s student) on %s" % (
        Path(cfg.teacher).name, cfg.student, cfg.scans)
    return Spec.from_dict(data)
