"""Losses of ``jetseg train --task enhancement``: pixel loss (L1 or MSE), an SSIM loss, and the optional
adversarial loss with a small PatchGAN discriminator (least-squares GAN, as in GAN denoisers such as
WGAN-VGG/RED-CNN-GAN work; off by default).

Tensors are ``(N, C, H, W) float32`` images in [0, 1].
"""
from __future__ import annotations

from typing import Any

import numpy as np

from jetseg.imagescores import gaussian_window
from jetseg.optional import require

torch = require("torch", "training")
from torch import nn  # noqa: E402

PIXEL_LOSSES = ("l1", "mse")


def pixel_loss(output: Any, target: Any, kind: str = "l1") -> Any:
    """Mean absolute (``l1``) or squared (``mse``) error."""
    if kind not in PIXEL_LOSSES:
        raise ValueError("pixel loss %r is unknown; expected %s" % (kind, " or ".join(PIXEL_LOSSES)))
    diff = output - target
    return diff.abs().mean() if kind == "l1" else (diff * diff).mean()


def ssim_loss(output: Any, target: Any) -> Any:
    """``1 - mean SSIM`` with the same Gaussian window and constants as :func:`jetseg.imagescores.ssim` (valid
    pixels only, data range 1)."""
    channels = output.shape[1]
    line = gaussian_window()
    window = torch.from_numpy(np.outer(line, line).astype(np.float32)).to(output.dtype)
    window = window[None, None].repeat(channels, 1, 1, 1)

    def blur(x: Any) -> Any:
        return torch.nn.functional.conv2d(x, window, groups=channels)

    c1, c2 = 0.01 ** 2, 0.03 ** 2  # K1, K2 at data range 1
    mu_x, mu_y = blur(output), blur(target)
    var_x = blur(output * output) - mu_x * mu_x
    var_y = blur(target * target) - mu_y * mu_y
    cov = blur(output * target) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return 1.0 - ssim.mean()


class PatchDiscriminator(nn.Module):
    """A small PatchGAN discriminator: three stride-2 4x4 convolutions (16, 32, 64 channels, LeakyReLU 0.2)
    and a 3x3 convolution to one realness score per patch: ``(N, C, H, W) -> (N, 1, H/8, W/8)``."""

    def __init__(self, channels: int = 1, width: int = 16) -> None:
        super().__init__()
        layers = []
        cin = channels
        for i in range(3):
            layers += [nn.Conv2d(cin, width * 2 ** i, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin = width * 2 ** i
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        return self.net(x)


class Adversarial:
    """The adversarial part of a step (least-squares GAN): :meth:`generator_loss` first updates the
    discriminator on ``(clean, denoised)`` with its own Adam optimizer, then returns the denoiser's loss
    ``mean((D(denoised) - 1)^2)`` (only the denoiser's optimizer steps on it)."""

    def __init__(self, channels: int, lr: float = 2e-4) -> None:
        self.net = PatchDiscriminator(channels)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))

    def generator_loss(self, denoised: Any, clean: Any) -> Any:
        self.net.train()
        self.opt.zero_grad()
        real, fake = self.net(clean), self.net(denoised.detach())
        loss_d = 0.5 * (((real - 1.0) ** 2).mean() + (fake ** 2).mean())
        loss_d.backward()
        self.opt.step()
        for p in self.net.parameters():  # the denoiser's loss must not move the discriminator
            p.requires_grad_(False)
        try:
            return ((self.net(denoised) - 1.0) ** 2).mean()
        finally:
            for p in self.net.parameters():
                p.requires_grad_(True)
