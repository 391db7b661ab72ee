"""Losses for training on labels and for distillation from a teacher's outputs.

All take raw model outputs (logits) ``(N, K, H, W) float32``: K class logits for a softmax output, K = 1 for
a sigmoid output. Soft targets follow Hinton et al. (2015): both outputs are divided by a temperature T, the
student is fitted to the teacher's softened probabilities, and the loss is multiplied by T**2 so that its
gradients keep their size when T changes.
"""
from __future__ import annotations

from typing import Any

from jetseg.optional import require

torch = require("torch", "training")
F = torch.nn.functional

KINDS = ("softmax", "sigmoid")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError("output kind %r is unknown; expected one of %s" % (kind, ", ".join(KINDS)))


def dice_ce_loss(logits: Any, target: Any, num_classes: int) -> Any:
    """Cross-entropy plus (1 - soft Dice) averaged over the foreground classes (softmax output, int64 masks)."""
    ce = F.cross_entropy(logits, target)
    prob = logits.softmax(dim=1)
    onehot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    return ce + soft_dice_loss(prob[:, 1:], onehot[:, 1:])


def soft_dice_loss(prob: Any, ref: Any, smooth: float = 1.0) -> Any:
    """1 - soft Dice per channel over the batch, averaged over channels: ``prob``, ``ref`` ``(N, K, H, W)``."""
    dims = (0, 2, 3)
    inter = (prob * ref).sum(dims)
    dice = (2 * inter + smooth) / (prob.sum(dims) + ref.sum(dims) + smooth)
    return 1.0 - dice.mean()


def foreground_probabilities(logits: Any, kind: str) -> Any:
    """Foreground probabilities ``(N, K-1, H, W)`` of a softmax output, ``(N, 1, H, W)`` of a sigmoid one."""
    _check_kind(kind)
    return logits.softmax(dim=1)[:, 1:] if kind == "softmax" else torch.sigmoid(logits)


def soft_target_loss(student: Any, teacher: Any, kind: str, temperature: float = 2.0) -> Any:
    """T**2 times the per-pixel divergence of the student from the teacher's softened outputs, mean over pixels.

    - ``softmax``: KL(p_t || p_s) with ``p = softmax(logits / T)`` over the class axis.
    - ``sigmoid``: binary cross-entropy of ``sigmoid(student / T)`` against the target ``sigmoid(teacher / T)``
      (the binary KL plus the teacher's entropy, a constant: the same gradients).
    """
    _check_kind(kind)
    t = float(temperature)
    if not t > 0:
        raise ValueError("temperature must be positive, got %r" % (temperature,))
    if student.shape != teacher.shape:
        raise ValueError("student output %s and teacher output %s differ in shape"
                         % (tuple(student.shape), tuple(teacher.shape)))
    if kind == "softmax":
        log_s = F.log_softmax(student / t, dim=1)
        log_t = F.log_softmax(teacher / t, dim=1)
        per_pixel = (log_t.exp() * (log_t - log_s)).sum(dim=1)
        return per_pixel.mean() * t * t
    target = torch.sigmoid(teacher / t)
    return F.binary_cross_entropy_with_logits(student / t, target) * t * t


def label_loss(logits: Any, target: Any, kind: str, num_classes: int) -> Any:
    """Loss against masks ``(N, H, W) int64``: Dice + cross-entropy (softmax) or Dice + BCE (sigmoid)."""
    _check_kind(kind)
    if kind == "softmax":
        return dice_ce_loss(logits, target, num_classes)
    ref = (target > 0).float()[:, None]
    return F.binary_cross_entropy_with_logits(logits, ref) + soft_dice_loss(torch.sigmoid(logits), ref)
