"""``jetseg train --task registration``: a 2-D VoxelMorph-style model trained on synthetic deformations.

Frames come from any source as for segmentation (:func:`~jetseg.training.data.read_frames`: preprocessed by
the spec, at model resolution, with their masks). A training pair is a frame (the moving image) and the same
frame warped by a random smooth field (:func:`jetseg.flowscores.smooth_field`, the fixed image), so the field
that registers them is known; the model never sees it. Loss (unsupervised, as VoxelMorph): the MSE between
the moving image warped by the predicted field (``grid_sample``) and the fixed image, at full, half and
quarter resolution (:func:`multiscale_mse`), plus ``smooth`` times
the mean squared spatial gradient of the field.

Held out: frames of other seeds ("patients") deformed by fields of other seeds. Scores, on the exported
ONNX model through the ``onnxrt`` runner (both inputs): the end-point error against the true field (mean,
p95, pixels), the folding fraction, and the Dice of the moving image's labels warped by the predicted field
against the labels warped by the true field; beside them the same scores of the identity (no registration).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from jetseg import flowscores
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
from jetseg.scores import mean_dice
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

log = logging.getLogger("jetseg.train")

#: Largest training deformation (``smooth_field``'s amplitude, pixels at model size); per pair a share of it.
AMPLITUDE = 6.0
#: Weight of the smoothness (squared field gradient) term.
SMOOTH = 0.05
#: Seeds of the held-out fields start here (training fields use seeds below it).
HELD_OUT_SEED = 10 ** 6


def registration_spec(name: str, size: Tuple[int, int], channels: int, roi: Any, warped: bool) -> Spec:
    """The spec of a trained registration bundle: ``moving`` + ``fixed`` -> ``flow`` (pixels), and ``warped``."""
    return Spec.from_dict({
        "name": name, "task": "registration",
        "input": input_section(size, channels, roi, name="moving"),
        "output": {"name": "flow"},
        "registration": {"fixed_input": "fixed", "units": "pixels", "warped_output": "warped" if warped else None},
        "description": "2-D registration (moving + fixed -> displacement field, pixels), trained by jetseg train",
    })


def field_batch(seeds: Any, size: Tuple[int, int], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Fields ``(N, 2, H, W) float32`` of the given seeds, each with a random share (0.25..1) of ``amplitude``."""
    return np.stack([flowscores.smooth_field(int(s), size, amplitude * rng.uniform(0.25, 1.0)) for s in seeds])


def held_out_pairs(data: Dataset, amplitude: float) -> Dict[str, Any]:
    """Held-out pairs (numpy warp): ``moving``, ``fixed``, true ``fields`` and the moving images' ``labels``."""
    fields, fixed = [], []
    rng = np.random.default_rng(HELD_OUT_SEED)
    size = tuple(data.x.shape[-2:])
    for i, x in enumerate(data.x):
        flow = field_batch([HELD_OUT_SEED + i], size, rng, amplitude)[0]
        fields.append(flow)
        fixed.append(flowscores.warp(x.astype(np.float32), flow))
    return {"moving": data.x.astype(np.float32), "fixed": np.stack(fixed).astype(np.float32),
            "fields": np.stack(fields), "labels": data.y}


def score_fields(pred: np.ndarray, pairs: Dict[str, Any]) -> Dict[str, Any]:
    """EPE against the true fields, folding, and warped-label Dice (predicted vs true field) of pixel fields
    ``pred`` (N, 2, H, W); the identity's scores beside them."""
    truth, labels = pairs["fields"], pairs["labels"]
    model, identity = flowscores.FlowScores(), flowscores.FlowScores()
    warped_p: List[np.ndarray] = []
    warped_i: List[np.ndarray] = []
    warped_t: List[np.ndarray] = []
    for i in range(len(truth)):
        model.add(pred[i], truth[i])
        identity.add(np.zeros_like(truth[i]), truth[i])
        if labels is not None:
            warped_t.append(flowscores.warp(labels[i], truth[i], "nearest"))
            warped_p.append(flowscores.warp(labels[i], pred[i], "nearest"))
            warped_i.append(labels[i])
    m, ident = model.summary(), identity.summary()
    out: Dict[str, Any] = {"pairs": m["frames"], "epe_mean": m["epe_mean"], "epe_p95": m["epe_p95"],
                           "folding": m["folding"], "true_folding": m["reference_folding"],
                           "identity_epe_mean": ident["epe_mean"], "identity_epe_p95": ident["epe_p95"]}
    if warped_t:
        classes = max(2, int(max(int(t.max()) for t in warped_t)) + 1)
        out["warped_label_dice"] = mean_dice(np.stack(warped_p), np.stack(warped_t), classes)
        out["identity_label_dice"] = mean_dice(np.stack(warped_i), np.stack(warped_t), classes)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def multiscale_mse(torch: Any, warped: Any, fixed: Any, scales: Tuple[int, ...] = (1, 2, 4)) -> Any:
    """Mean over ``scales`` of the MSE of the images average-pooled by that factor: the coarse scales smooth the
    speckle away, so a displacement of several pixels still has a gradient toward the fixed image."""
    pool = torch.nn.functional.avg_pool2d
    return sum(torch.mean((pool(warped, k) - pool(fixed, k)) ** 2) if k > 1 else torch.mean((warped - fixed) ** 2)
               for k in scales) / len(scales)


def train_registration(cfg: Any) -> Bundle:
    """Train a registration architecture (``cfg.arch``, e.g. ``vxm-small``) on ``cfg.data`` as the module says;
    ``cfg`` is a :class:`~jetseg.training.train.TrainConfig`. Writes and returns the bundle."""
    from jetseg.optional import require

    torch = require("torch", "training")
    from jetseg.models.archs import ARCHITECTURES, REGISTRATION_ARCHS, build_model, describe
    from jetseg.models.export import compare_with_torch, torch_to_onnx
    from jetseg.training.card import registration_card
    from jetseg.training.loop import fit, state_bytes, use_training_threads

    ARCHITECTURES.check(cfg.arch)
    if cfg.arch not in REGISTRATION_ARCHS:
        raise TrainError("--arch %s is a segmentation model; --task registration trains %s"
                         % (cfg.arch, " or ".join(REGISTRATION_ARCHS)))
    data_inputs = [uri_path(cfg.data), uri_path(cfg.val_data)]
    check_out(cfg.out, cfg.overwrite, data_inputs)
    train_threads = use_training_threads(cfg.train_threads)
    torch.manual_seed(cfg.seed)
    started = time.time()
    name = Path(cfg.out).name
    kind = synthetic_kind(cfg.data)
    channels = cfg.channels or (1 if kind in (None, "ultrasound") else 3)
    warped = bool(cfg.arch_kwargs.get("warped", cfg.arch == "vxm-small"))

    def make(frame: Any) -> Spec:
        return registration_spec(name, cfg.input_size, channels, frame.meta.get("roi"), warped)

    every = cfg.every or (4 if kind else 1)
    train_set, spec = read_frames(cfg.data, cfg.frames, every, None, make, labels="optional")
    val_uri = cfg.val_data or held_out_uri(cfg.data, cfg.val_frames, cfg.val_every or 10)
    if val_uri is None:
        train_set, val_set = split_tail(train_set, cfg.val_fraction)
    else:
        val_set, _ = read_frames(val_uri, cfg.val_frames, cfg.val_every or (10 if kind else 1), spec,
                                 dtype=np.float32, labels="optional")
    kwargs = dict(cfg.arch_kwargs, input_size=list(spec.input.size), in_channels=channels, warped=warped)
    model = build_model(cfg.arch, **kwargs)
    n = len(train_set.x)
    steps = cfg.steps if cfg.epochs is None else cfg.epochs * int(math.ceil(n / float(cfg.batch)))
    if steps < 1:
        raise TrainError("nothing to train: %d steps; give --steps or --epochs >= 1" % steps)
    pairs = held_out_pairs(val_set, AMPLITUDE)
    size = tuple(spec.input.size)
    rng = np.random.default_rng(cfg.seed)
    step_seed = [0]

    def step_loss(idx: np.ndarray) -> Any:
        moving = torch.from_numpy(train_set.x[idx].astype(np.float32))
        seeds = range(step_seed[0], step_seed[0] + len(idx))
        step_seed[0] += len(idx)
        true = torch.from_numpy(field_batch(seeds, size, rng, AMPLITUDE))  # type: ignore[arg-type]
        with torch.no_grad():
            fixed = model.warp(moving, true)
        flow = model.field(moving, fixed)
        similarity = multiscale_mse(torch, model.warp(moving, flow), fixed)
        dx, dy = flow[:, :, :, 1:] - flow[:, :, :, :-1], flow[:, :, 1:] - flow[:, :, :-1]
        return similarity + SMOOTH * (torch.mean(dx ** 2) + torch.mean(dy ** 2))

    def predict_fields(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([model.field(torch.from_numpy(moving[i:i + 16]), torch.from_numpy(fixed[i:i + 16]))
                                   .numpy() for i in range(0, len(moving), 16)])

    def val_score() -> float:  # higher is better: minus the mean EPE against the true fields
        return -score_fields(predict_fields(pairs["moving"], pairs["fixed"]), pairs)["epe_mean"]

    result = fit(model, step_loss, val_score, n=n, steps=steps, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed,
                 eval_interval=cfg.eval_interval, desc="train " + cfg.arch, score_name="val_minus_epe")
    onnx_bytes = torch_to_onnx(model, spec)
    max_diff = compare_with_torch(model, onnx_bytes, spec)
    weights = state_bytes(model)
    provenance: Dict[str, Any] = {
        "command": command_line(), "tool": "jetseg train", "architecture": describe(cfg.arch, kwargs),
        "data": {"train": {"uri": cfg.data, "frames_used": int(n), "frames_read": train_set.read, "every": every,
                           "sha256": train_set.sha256},
                 "validation": {"uri": val_set.uri, "frames_used": int(len(val_set.x)), "sha256": val_set.sha256}},
        "training": {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")},
        "registration": {"loss": "MSE(warped moving, fixed) at scales 1, 1/2, 1/4 + %g x mean squared field gradient" % SMOOTH,
                         "deformations": "jetseg.flowscores.smooth_field, amplitude %g px x U(0.25, 1), training "
                                         "seeds from 0, held-out seeds from %d" % (AMPLITUDE, HELD_OUT_SEED)},
        "history": result.history, "best_step": result.best_step, "onnx_max_abs_diff_vs_torch": max_diff,
        "seconds": round(time.time() - started, 1),
    }
    provenance["training"].update(steps_run=steps, train_threads_used=train_threads)
    parent = Path(cfg.out).resolve().parent
    with staged_bundle(onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights}, provenance=provenance,
                       parent=parent, prefix=".jetseg-train-") as exported:
        provenance["metrics"] = evaluate_registration(exported, pairs, threads=cfg.threads)
    card = registration_card(spec, provenance, model)
    bundle = save_bundle(cfg.out, onnx_bytes, spec, extra_files={WEIGHTS_FILE: weights, "MODEL_CARD.md": card},
                         provenance=provenance, overwrite=cfg.overwrite, inputs=data_inputs)
    log.info("wrote %s: held-out EPE mean %.3f px, p95 %.3f px (onnxrt)", cfg.out,
             provenance["metrics"]["epe_mean"], provenance["metrics"]["epe_p95"])
    return bundle


def evaluate_registration(bundle: BundleLike, pairs: Dict[str, Any], backend: str = "onnxrt",
                          threads: int = 0) -> Dict[str, Any]:
    """:func:`score_fields` of a registration bundle run pair by pair through a runner (both inputs)."""
    from jetseg.jetson.runners import open_runner

    with open_runner(backend, bundle, threads=threads) as runner:
        reg = runner.spec.registration
        assert reg is not None, "a registration bundle"
        fields = [flowscores.to_pixels(runner.infer(pairs["moving"][i:i + 1], {reg.fixed_input: pairs["fixed"][i:i + 1]}),
                                       reg.units) for i in range(len(pairs["moving"]))]
    out = score_fields(np.stack(fields), pairs)
    out.update(backend=backend, resolution="model input (%dx%d)" % tuple(runner.spec.input.size))
    return out
