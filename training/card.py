"""MODEL_CARD.md of a bundle written by ``jetseg train`` or ``jetseg distill``: one writer for both.

Every number on the card comes from the run's provenance (the manifest's ``provenance``), so the card and the
manifest never disagree. The sections are the same for both tools (architecture, data, how it was made,
held-out accuracy, limits); what differs is read from the provenance: a distilled bundle names its teacher.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from jetseg.spec import Spec
from jetseg.training.data import synthetic_kind

NOT_CLINICAL = "- Not a medical device; not for diagnosis or any clinical use."


def model_card(spec: Spec, prov: Dict[str, Any], model: Any) -> bytes:
    """MODEL_CARD.md for a trained or distilled bundle (all numbers come from ``prov``, this run's provenance).

    Args:
        spec: the bundle's spec.
        prov: the provenance ``jetseg train`` or ``jetseg distill`` stores in the manifest; ``"teacher"`` in it
            makes the card a distilled student's.
        model: the PyTorch model (for its parameter count).
    """
    distilled = "teacher" in prov
    params = sum(int(p.numel()) for p in model.parameters())
    lines = ["# %s" % spec.name, "", _summary(spec, prov, distilled), "", "## Architecture", ""]
    lines += _architecture(spec, prov, params)
    if distilled:
        lines += [""] + _sizes(prov["size"])
    lines += ["", "## Data", ""] + (_student_data(prov["data"]) if distilled else _train_data(prov["data"]))
    lines += ["", "## Distillation" if distilled else "## Training", "", "```", prov["command"], "```", "",
              _distill_method(spec, prov) if distilled else _train_method(prov), "",
              "## Held-out accuracy", "", _student_accuracy(prov) if distilled else _train_accuracy(prov), "",
              "## Limits", ""]
    lines += [_student_limit() if distilled else _train_limit(), NOT_CLINICAL, ""]
    return "\n".join(lines).encode("utf-8")


# ---------------------------------------------------------------------------------------------- shared
def _summary(spec: Spec, prov: Dict[str, Any], distilled: bool) -> str:
    if distilled:
        return ("A student distilled from the teacher bundle `%s` (model sha256 %s...). It keeps the teacher's "
                "spec (input, normalisation, ROI, classes, output kind). **Not for clinical use.**"
                % (prov["teacher"]["name"], prov["teacher"]["model_sha256"][:16]))
    return ("Segmentation of %s in synthetic %s frames. **Synthetic data only: not for clinical use.**"
            % (", ".join(spec.classes[1:]), synthetic_kind(prov["training"]["data"]) or "labelled"))


def _architecture(spec: Spec, prov: Dict[str, Any], params: int) -> List[str]:
    from jetseg.models.archs import ARCHITECTURES

    arch = prov["architecture"]
    return [
        "- `%s` (%s), %d parameters, kwargs `%s`" % (arch["name"], ARCHITECTURES.describe(arch["name"]), params,
                                                     arch["kwargs"]),
        "- input `%s` %s float32 (NCHW), %s, mean %s, std %s, ROI %s" % (
            spec.input.name, list(spec.input_shape), spec.input.color_order, spec.input.mean, spec.input.std,
            spec.input.roi),
        "- output `%s` %s %s logits, classes %s" % (spec.output.name, list(spec.output_shape), spec.output.kind,
                                                   spec.classes),
        "- ONNX opset 17, static shape; ONNX Runtime vs PyTorch max |diff| %.2g" % prov["onnx_max_abs_diff_vs_torch"],
    ]


def _sha(record: Dict[str, Any]) -> str:
    return record["sha256"][:16]


def _fmt(value: Optional[float]) -> str:
    return "n/a (no labels)" if value is None else "%.4f" % value


# ---------------------------------------------------------------------------------------------- jetseg train
def _train_data(data: Dict[str, Any]) -> List[str]:
    train, val = data["train"], data["validation"]
    return [
        "- training: `%s`, one frame in %d, %d frames used (sha256 %s...)" % (
            train["uri"], train["every"], train["frames_used"], _sha(train)),
        "- held out: `%s`, %d frames (sha256 %s...), never seen in training (used to pick the best step)" % (
            val["uri"], val["frames_used"], _sha(val)),
    ]


def _train_method(prov: Dict[str, Any]) -> str:
    tr = prov["training"]
    return ("%d steps, batch %d, AdamW lr %g (one-cycle), Dice + cross-entropy loss, augmentation (rotation, flips, "
            "zoom, elastic, intensity); best held-out step %d; %.0f s on this machine's CPU."
            % (tr["steps_run"], tr["batch"], tr["lr"], prov["best_step"], prov["seconds"]))


def _train_accuracy(prov: Dict[str, Any]) -> str:
    m = prov["metrics"]
    return ("Mean per-frame Dice of the exported `model.onnx` through the `%s` runner on the held-out frames, at "
            "the model's input resolution: **%.4f** (%s)." % (m["backend"], m["dice"], ", ".join(
                "%s %.4f" % kv for kv in m["per_class"].items())))


def _train_limit() -> str:
    return ("- Trained and tested on jetseg's synthetic generator only; real scans look different. Retrain or "
            "fine-tune on your own labelled scans (`jetseg train --data DIR`).")


# ---------------------------------------------------------------------------------------------- jetseg distill
def _sizes(size: Dict[str, Any]) -> List[str]:
    t, s = size["teacher"], size["student"]
    return [
        "| model | ONNX bytes | parameters | MACs per frame |", "|---|---|---|---|",
        "| teacher | %d | %d | %.3g |" % (t["bytes"], t["params"], t["macs"]),
        "| student | %d (%.1f%%) | %d | %.3g (%.1f%%) |" % (
            s["bytes"], 100 * size["bytes_ratio"], s["params"], s["macs"], 100 * size["macs_ratio"]),
    ]


def _student_data(data: Dict[str, Any]) -> List[str]:
    train = data["train"]
    return [
        "- training: `%s`, one frame in %d, %d frames (sha256 %s...), labels %s" % (
            train["uri"], train["every"], train["frames_used"], _sha(train),
            "used" if train["labels_used"] else "not used"),
        "- step selection: `%s`, %d frames" % (data["selection"]["uri"], data["selection"]["frames_used"]),
        "- report and gate: `%s`, %d frames, used for nothing else" % (data["report"]["uri"],
                                                                      data["report"]["frames_used"]),
    ]


def _distill_method(spec: Spec, prov: Dict[str, Any]) -> str:
    d = prov["distillation"]
    return ("%d steps, batch %d, AdamW lr %g (one-cycle); loss: soft targets at temperature %g (%s) + %g x soft "
            "Dice vs the teacher%s; augmentation as in training; best step %d; %.0f s on this machine's CPU."
            % (d["steps"], d["batch"], d["lr"], d["temperature"], "KL" if spec.output.kind == "softmax" else "BCE",
               d["dice_weight"], " + %g x label loss" % d["label_weight"] if prov["data"]["train"]["labels_used"]
               else "", prov["best_step"], prov["seconds"]))


def _student_accuracy(prov: Dict[str, Any]) -> str:
    m = prov["metrics"]
    return ("Mean per-frame Dice of the exported `model.onnx` through the `%s` runner on %d report frames, at the "
            "model's input resolution: **%.4f vs the teacher** (gate %.2f); vs the labels %s (teacher vs the "
            "labels %s)." % (m["backend"], m["frames"], m["dice_vs_teacher"], prov["distillation"]["gate_dice"],
                             _fmt(m["dice_vs_labels"]), _fmt(m["teacher_dice_vs_labels"])))


def _student_limit() -> str:
    return "- A student reproduces its teacher, errors included; it is no better than the teacher on the labels."


# ---------------------------------------------------------------------------------------------- registration
def registration_card(spec: Spec, prov: Dict[str, Any], model: Any) -> bytes:
    """MODEL_CARD.md for a registration bundle of ``jetseg train --task registration`` (numbers from ``prov``)."""
    params = sum(int(p.numel()) for p in model.parameters())
    arch, tr, m, reg = prov["architecture"], prov["training"], prov["metrics"], spec.registration
    assert reg is not None, "a registration spec"
    dice = ("; Dice of the moving image's labels warped by the predicted field vs by the true field **%.4f** "
            "(identity %.4f)" % (m["warped_label_dice"], m["identity_label_dice"])) if "warped_label_dice" in m else ""
    lines = [
        "# %s" % spec.name, "",
        "2-D deformable registration (VoxelMorph style) of synthetic %s frames: moving + fixed image -> "
        "displacement field. **Synthetic data only: not for clinical use.**" % (synthetic_kind(tr["data"]) or "")
        , "", "## Architecture", "",
        "- `%s`, %d parameters, kwargs `%s`" % (arch["name"], params, arch["kwargs"]),
        "- inputs `%s` (moving) and `%s` (fixed) %s float32 (NCHW), %s, mean %s, std %s, ROI %s" % (
            spec.input.name, reg.fixed_input, list(spec.input_shape), spec.input.color_order, spec.input.mean,
            spec.input.std, spec.input.roi),
        "- output `%s` %s: displacement in %s, x (columns) then y (rows); warped moving image: %s" % (
            spec.output.name, list(spec.output_shape), reg.units,
            "`%s` (ONNX GridSample, opset 16+)" % reg.warped_output if reg.warped_output else "not in the graph"),
        "- ONNX opset 17, static shape; ONNX Runtime vs PyTorch max |diff| of the field %.2g"
        % prov["onnx_max_abs_diff_vs_torch"],
        "", "## Data", "",
    ] + _train_data(prov["data"]) + [
        "- pairs: each frame (moving) and the frame warped by a random smooth field (fixed); %s"
        % prov["registration"]["deformations"],
        "", "## Training", "", "```", prov["command"], "```", "",
        "%d steps, batch %d, AdamW lr %g (one-cycle); loss %s (the true field is never used); best held-out step "
        "%d; %.0f s on this machine's CPU." % (tr["steps_run"], tr["batch"], tr["lr"], prov["registration"]["loss"],
                                               prov["best_step"], prov["seconds"]),
        "", "## Held-out accuracy", "",
        "The exported `model.onnx` through the `%s` runner on %d held-out pairs at %s: end-point error against the "
        "true field mean **%.3f px**, p95 **%.3f px** (identity: mean %.3f px, p95 %.3f px); folding fraction "
        "%.4f%s." % (m["backend"], m["pairs"], m["resolution"], m["epe_mean"], m["epe_p95"], m["identity_epe_mean"],
                     m["identity_epe_p95"], m["folding"], dice),
        "", "## Limits", "",
        "- Trained on synthetic smooth deformations of single frames, not on real tissue motion between frames; "
        "retrain on your own scans (`jetseg train --task registration --data DIR`).",
        NOT_CLINICAL, "",
    ]
    return "\n".join(lines).encode("utf-8")
