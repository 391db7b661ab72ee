"""Distillation losses against hand computations; soft targets move with the augmented image."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from jetseg.training.augment import Augment  # noqa: E402
from jetseg.training.losses import foreground_probabilities, soft_dice_loss, soft_target_loss  # noqa: E402


def _pixels(*values):
    """Logits of one frame of ``len(values)`` pixels in a row: ``values`` are per-pixel class-logit lists."""
    return torch.tensor(values, dtype=torch.float32).t()[None, :, None, :]  # (1, K, 1, W)


def test_softmax_soft_targets_are_t_squared_kl_by_hand():
    student = _pixels([0.0, 0.0], [1.0, -1.0])
    teacher = _pixels([1.0, 0.0], [1.0, -1.0])
    t = 2.0
    pt = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]  # softmax([1, 0] / 2)
    kl_first = pt[0] * math.log(pt[0] / 0.5) + pt[1] * math.log(pt[1] / 0.5)
    expected = t * t * (kl_first + 0.0) / 2  # the second pixel matches: KL 0; mean over the 2 pixels
    assert soft_target_loss(student, teacher, "softmax", t).item() == pytest.approx(expected, rel=1e-5)
    assert soft_target_loss(teacher, teacher, "softmax", t).item() == pytest.approx(0.0, abs=1e-6)


def test_sigmoid_soft_targets_are_t_squared_bce_by_hand():
    student = _pixels([0.0], [2.0])
    teacher = _pixels([2.0], [2.0])
    t = 2.0
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    target = sig(1.0)
    bce = [-(target * math.log(sig(s / t)) + (1 - target) * math.log(1 - sig(s / t))) for s in (0.0, 2.0)]
    assert soft_target_loss(student, teacher, "sigmoid", t).item() == pytest.approx(t * t * sum(bce) / 2, rel=1e-5)


def test_temperature_one_softmax_is_plain_kl():
    student, teacher = _pixels([0.3, -0.2, 1.0]), _pixels([2.0, 0.0, -1.0])
    ps, pt = student.softmax(1).flatten(), teacher.softmax(1).flatten()
    expected = sum(float(a) * math.log(float(a) / float(b)) for a, b in zip(pt, ps))
    assert soft_target_loss(student, teacher, "softmax", 1.0).item() == pytest.approx(expected, rel=1e-5)


def test_soft_dice_against_teacher_probabilities_by_hand():
    student = _pixels([0.0, 0.0], [0.0, 0.0])  # p(lesion) 0.5, 0.5
    teacher = _pixels([0.0, 50.0], [50.0, 0.0])  # p(lesion) 1, 0
    ps, pt = foreground_probabilities(student, "softmax"), foreground_probabilities(teacher, "softmax")
    expected = 1 - (2 * 0.5 + 1) / (1.0 + 1.0 + 1)
    assert soft_dice_loss(ps, pt).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind, temperature, text", [
    ("softmax", 0.0, "temperature must be positive"),
    ("linear", 2.0, "output kind 'linear' is unknown"),
])
def test_bad_arguments_are_named(kind, temperature, text):
    with pytest.raises(ValueError, match=text):
        soft_target_loss(_pixels([0.0, 1.0]), _pixels([0.0, 1.0]), kind, temperature)


def test_teacher_logits_move_with_the_image_and_the_mask():
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    y = torch.zeros(2, 32, 32, dtype=torch.int64)
    y[:, 8:20, 10:24] = 1
    x = y[:, None].float()
    soft = torch.nn.functional.one_hot(y, 2).permute(0, 3, 1, 2).float() * 20 - 10  # confident logits of y
    aug = Augment(elastic=0.0, brightness=0, contrast=0, gamma=0, noise=0)
    _, y2, soft2 = aug.apply(x, gen_a, y=y, soft=soft)
    _, y_only = aug(x, y, gen_b)  # the same draws whether or not soft targets are given
    assert torch.equal(y2, y_only)
    agree = (soft2.argmax(1) == y2).float().mean().item()
    assert agree > 0.97  # bilinear vs nearest differ only along the outline
