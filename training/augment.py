"""Training augmentation on model-size batches: rotation, flips, scaling, elastic deformation, intensity.

All geometric transforms are combined into one sampling grid per image (``grid_sample``: bilinear for
images, nearest for masks), so a mask always stays aligned with its image. The elastic field is a coarse
random grid upsampled smoothly, which bends outlines without tearing them: lesion shapes stay plausible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from jetseg.optional import require

torch = require("torch", "training")
F = torch.nn.functional


@dataclass
class Augment:
    """Augmentation strengths (0 disables a transform).

    Attributes:
        rotate_deg: maximum rotation either way.
        hflip, vflip: probabilities of a horizontal / vertical flip.
        scale: maximum relative zoom either way.
        elastic: maximum displacement of the elastic field, as a fraction of the image size.
        brightness, contrast: additive / multiplicative jitter on the normalised input.
        gamma: maximum |log gamma| applied to the normalised input's rank order (kept monotonic).
        noise: standard deviation of added Gaussian noise (normalised units).
    """

    rotate_deg: float = 15.0
    hflip: float = 0.5
    vflip: float = 0.0
    scale: float = 0.1
    elastic: float = 0.03
    brightness: float = 0.15
    contrast: float = 0.15
    gamma: float = 0.2
    noise: float = 0.05

    @classmethod
    def for_kind(cls, kind: str) -> Augment:
        """Defaults per modality: ultrasound keeps depth pointing down; endoscopy rotates freely."""
        if kind == "endoscopy":
            return cls(rotate_deg=180.0, hflip=0.5, vflip=0.5, scale=0.15)
        return cls()

    def __call__(self, x: Any, y: Any, gen: Any) -> Tuple[Any, Any]:
        """Augment a batch: ``x (N, C, H, W) float32``, ``y (N, H, W) int64``; returns new tensors."""
        x, y, _ = self.apply(x, gen, y=y)
        return x, y

    def apply(self, x: Any, gen: Any, y: Optional[Any] = None,
              soft: Optional[Any] = None) -> Tuple[Any, Optional[Any], Optional[Any]]:
        """Augment ``x (N, C, H, W) float32`` and move masks and soft targets with it.

        ``y (N, H, W) int64`` masks are resampled nearest; ``soft (N, K, H, W) float32`` maps (a teacher's
        logits) bilinearly with the same grid. Intensity changes apply to ``x`` only. The random draws do
        not depend on which of ``y`` / ``soft`` are given, so a seed gives the same geometry either way.
        """
        n, _, h, w = x.shape
        u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
        angle = (u(n) * 2 - 1) * math.radians(self.rotate_deg)
        zoom = 1.0 + (u(n) * 2 - 1) * self.scale
        sx = torch.where(u(n) < self.hflip, -1.0, 1.0) / zoom
        sy = torch.where(u(n) < self.vflip, -1.0, 1.0) / zoom
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos * sx, -sin * sy, torch.zeros(n)], dim=1),
                             torch.stack([sin * sx, cos * sy, torch.zeros(n)], dim=1)], dim=1)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if self.elastic > 0:
            coarse = (torch.rand(n, 2, 5, 5, generator=gen) * 2 - 1) * (2 * self.elastic)
            field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
            grid = grid + field.permute(0, 2, 3, 1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if y is not None:
            y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="border",
                              align_corners=False)[:, 0].long().contiguous()
        if soft is not None:
            soft = F.grid_sample(soft, grid, mode="bilinear", padding_mode="border", align_corners=False).contiguous()
        if self.gamma > 0:
            lo = x.amin(dim=(1, 2, 3), keepdim=True)
            hi = x.amax(dim=(1, 2, 3), keepdim=True)
            span = (hi - lo).clamp_min(1e-6)
            g = torch.exp((u(n, 1, 1, 1) * 2 - 1) * self.gamma)
            x = ((x - lo) / span).clamp(0, 1) ** g * span + lo
        x = x * (1.0 + (u(n, 1, 1, 1) * 2 - 1) * self.contrast) + (u(n, 1, 1, 1) * 2 - 1) * self.brightness
        if self.noise > 0:
            x = x + torch.randn(x.shape, generator=gen) * self.noise * u(n, 1, 1, 1)
        return x.contiguous(), y, soft
