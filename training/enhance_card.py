"""MODEL_CARD.md of an enhancement bundle written by ``jetseg train --task enhancement``.

As for segmentation (:mod:`.card`), every number comes from the run's provenance, so card and manifest agree.
"""
from __future__ import annotations

from typing import Any, Dict, List

from jetseg.spec import Spec
from jetseg.training.card import NOT_CLINICAL, _train_data
from jetseg.training.data import synthetic_kind


def enhancement_card(spec: Spec, prov: Dict[str, Any], model: Any) -> bytes:
    """MODEL_CARD.md for a trained denoiser (``prov``: the provenance stored in the manifest)."""
    from jetseg.models.archs import ARCHITECTURES

    arch, tr, m = prov["architecture"], prov["training"], prov["metrics"]
    params = sum(int(p.numel()) for p in model.parameters())
    kind = synthetic_kind(tr["data"])
    losses = [tr["loss"].upper()]
    if tr["ssim_weight"] > 0:
        losses.append("%g x (1 - SSIM)" % tr["ssim_weight"])
    if tr["adversarial"]:
        losses.append("%g x least-squares GAN loss (PatchGAN discriminator)" % tr["adv_weight"])
    lines: List[str] = [
        "# %s" % spec.name, "",
        "Denoising (task `enhancement`) of %s frames. **Synthetic data only: not for clinical use.**"
        % ("synthetic %s" % kind if kind else "paired"), "",
        "## Architecture", "",
        "- `%s` (%s), %d parameters, kwargs `%s`" % (arch["name"], ARCHITECTURES.describe(arch["name"]), params,
                                                     arch["kwargs"]),
        "- input `%s` %s float32 (NCHW), %s in [0, 1] (mean %s, std %s), area resizing, ROI %s" % (
            spec.input.name, list(spec.input_shape), spec.input.color_order, spec.input.mean, spec.input.std,
            spec.input.roi),
        "- output `%s` %s, the denoised image, range %s" % (spec.output.name, list(spec.output_shape),
                                                          spec.enhancement.range if spec.enhancement else None),
        "- ONNX opset 17, static shape; ONNX Runtime vs PyTorch max |diff| %.2g" % prov["onnx_max_abs_diff_vs_torch"],
        "", "## Data", "",
    ]
    lines += _train_data(prov["data"])
    lines += [
        "", "## Training", "", "```", prov["command"], "```", "",
        "%d steps, batch %d%s, AdamW lr %g (one-cycle), loss %s, left-right flips; best held-out step %d (by "
        "PSNR); %.0f s on this machine's CPU (%d training thread(s))." % (
            tr["steps_run"], tr["batch"], " of %dx%d crops" % (tr["patch_used"], tr["patch_used"]) if tr["patch_used"]
            else "", tr["lr"], " + ".join(losses), prov["best_step"], prov["seconds"], tr["train_threads_used"]),
        "", "## Held-out accuracy", "",
        "Mean per-frame PSNR and SSIM against the clean targets, of the exported `model.onnx` through the `%s` "
        "runner on %d held-out frames at the model's input resolution (targets cropped and area-resized like the "
        "input, `jetseg.tasks.clean_target`):" % (m["backend"], m["frames"]), "",
        "| image | PSNR (dB) | SSIM |", "|---|---|---|",
        "| noisy input | %.2f | %.4f |" % (m["input"]["psnr"], m["input"]["ssim"]),
        "| **denoised (model.onnx)** | **%.2f** | **%.4f** |" % (m["psnr"], m["ssim"]),
        "", "## Limits", "",
        "- Trained and tested on jetseg's synthetic generator and its noise models only (docs/tasks.md); real "
        "noise differs. Retrain on your own pairs (`jetseg train --task enhancement --data DIR` with images/ and "
        "clean/).",
        "- A denoiser can remove or invent fine structure; judge it on what a reader needs to see.",
        NOT_CLINICAL, "",
    ]
    return "\n".join(lines).encode("utf-8")
