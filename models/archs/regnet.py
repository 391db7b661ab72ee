"""A 2-D VoxelMorph-style registration network (Balakrishnan et al., 2019), built to deploy like the U-Nets.

The moving and the fixed image ``(N, C, H, W)`` are concatenated on the channel axis and go through a U-Net
(:class:`~jetseg.models.archs.unet.UNet`: Conv-BN-ReLU, ConvTranspose k=2 s=2 p=0, static shapes) whose head
outputs the displacement field ``(N, 2, H, W)`` in pixels, x (columns) then y (rows), the layout of
``spec.registration`` (docs/tasks.md). The head starts near zero (the identity map), as in VoxelMorph.

The warp is backward: the warped moving image samples the moving image at ``p + u(p)`` with ``grid_sample``
(bilinear, zeros outside, ``align_corners=False``), the same rule as :func:`jetseg.flowscores.warp`. With
``warped=True`` the model also returns the warped image, which exports as ONNX ``GridSample`` (opset 16+;
TensorRT 8.5 imports the 2-D form only, and it does not run on the DLA: GPU fallback).
"""
from __future__ import annotations

from typing import Any, Sequence

from jetseg.models.archs.unet import ModelConfigError, UNet
from jetseg.optional import require

require("torch", "the registration models")
import torch  # noqa: E402
from torch import nn  # noqa: E402

F = nn.functional


class SpatialWarp(nn.Module):
    """Backward warp by a pixel field: ``(image (N, C, H, W), flow (N, 2, H, W)) -> (N, C, H, W)``.

    The sampling grid is the pixel centres in grid_sample's normalised coordinates (align_corners=False) plus
    the field scaled by ``2 / W`` (x) and ``2 / H`` (y): constants, so the graph holds one Add, one Mul, a
    Transpose and the GridSample.
    """

    def __init__(self, size: Sequence[int]) -> None:
        super().__init__()
        height, width = int(size[0]), int(size[1])
        ys = (torch.arange(height, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
        xs = (torch.arange(width, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self.register_buffer("base", torch.stack([gx, gy], dim=-1)[None], persistent=False)  # (1, H, W, 2)
        self.register_buffer("scale", torch.tensor([2.0 / width, 2.0 / height]), persistent=False)

    def forward(self, image: Any, flow: Any) -> Any:
        grid = self.base + flow.permute(0, 2, 3, 1) * self.scale
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class RegistrationNet(nn.Module):
    """Moving + fixed image to a displacement field (pixels), optionally with the warped moving image.

    Args:
        input_size: ``(height, width)``, multiples of ``2**depth``.
        in_channels: channels of each image (1 grey, 3 colour).
        depth, base_width, separable: the U-Net's (:class:`~jetseg.models.archs.unet.UNet`).
        warped: also return the warped moving image (the bundle's ``registration.warped_output``).

    Input: ``moving``, ``fixed`` ``(N, in_channels, H, W) float32``. Output: the field ``(N, 2, H, W)
    float32`` (x then y, pixels), or ``(field, warped)`` with ``warped=True``.
    """

    def __init__(self, input_size: Sequence[int] = (128, 128), in_channels: int = 1, depth: int = 3,
                 base_width: int = 16, separable: bool = False, warped: bool = False) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ModelConfigError("registration net in_channels=%r; expected 1 or 3 (each image's channels)"
                                   % (in_channels,))
        # a one-channel U-Net (its first convolution is a plain 3x3 one) whose first convolution is widened to
        # take the pair (2 * in_channels channels)
        self.unet = UNet(input_size, 1, 2, depth, base_width, separable)
        block: Any = self.unet.down[0]
        block[0] = nn.Conv2d(2 * in_channels, block[0].out_channels, 3, padding=1, bias=False)
        head: Any = self.unet.head
        nn.init.normal_(head.weight, 0.0, 1e-5)
        nn.init.zeros_(head.bias)
        self.warp = SpatialWarp(input_size)
        self.warped = bool(warped)
        self.config = dict(self.unet.config, in_channels=int(in_channels), warped=self.warped)

    def field(self, moving: Any, fixed: Any) -> Any:
        """The displacement field ``(N, 2, H, W)`` in pixels."""
        return self.unet(torch.cat([moving, fixed], dim=1))

    def forward(self, moving: Any, fixed: Any) -> Any:
        flow = self.field(moving, fixed)
        return (flow, self.warp(moving, flow)) if self.warped else flow


def vxm_small(input_size: Sequence[int] = (128, 128), in_channels: int = 1, depth: int = 3, base_width: int = 16,
              warped: bool = True) -> RegistrationNet:
    """The bundled registration net: U-Net depth 3, base width 16, plain 3x3 convolutions, warped output."""
    return RegistrationNet(input_size, in_channels, depth, base_width, separable=False, warped=warped)


def vxm_tiny(input_size: Sequence[int] = (32, 32), in_channels: int = 1, depth: int = 2, base_width: int = 4,
             warped: bool = False) -> RegistrationNet:
    """A tiny registration net for tests and smoke runs (depth 2, base width 4)."""
    return RegistrationNet(input_size, in_channels, depth, base_width, separable=False, warped=warped)
