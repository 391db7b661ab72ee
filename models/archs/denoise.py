"""A residual U-Net denoiser (DnCNN's residual learning on a U-Net body), built for deployment like the U-Net.

The network predicts the correction and adds it to its input: ``out = x + unet(x)`` (Zhang et al., DnCNN,
2017: learning the residual is easier than learning the clean image). The body is
:class:`~jetseg.models.archs.unet.UNet` with plain 3x3 convolutions and ``channels`` outputs, so the graph has
the same deployable ops (Conv, BN folded at export, ReLU, MaxPool, ConvTranspose k=2 s=2, Concat) plus one
Add. Input and output are images in the same units (``spec.input`` mean 0, std 1: [0, 1]).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from jetseg.models.archs.unet import ModelConfigError, UNet, nn


class ResidualUNet(nn.Module):
    """Image-to-image U-Net with a global residual connection.

    Args:
        input_size: ``(height, width)``, multiples of ``2**depth``.
        in_channels: image channels (1 or 3); the output has as many.
        num_classes: output channels; must equal ``in_channels`` when given (the registry's common keyword).
        depth, base_width: as :class:`~jetseg.models.archs.unet.UNet`.

    Input ``(N, C, H, W) float32``; output ``(N, C, H, W) float32``, the input plus the predicted correction.
    """

    def __init__(self, input_size: Sequence[int] = (128, 128), in_channels: int = 1,
                 num_classes: Optional[int] = None, depth: int = 3, base_width: int = 16) -> None:
        super().__init__()
        if num_classes is not None and num_classes != in_channels:
            raise ModelConfigError("a residual denoiser outputs its input's channels; got in_channels=%r, "
                                   "num_classes=%r (give equal numbers)" % (in_channels, num_classes))
        self.body = UNet(input_size, in_channels, in_channels, depth, base_width, separable=False)
        self.config = dict(self.body.config)
        head: Any = self.body.head
        nn.init.zeros_(head.weight)  # starts as the identity: the output is the input
        nn.init.zeros_(head.bias)

    def forward(self, x: Any) -> Any:
        return x + self.body(x)


def unet_denoise(input_size: Sequence[int] = (128, 128), in_channels: int = 1, num_classes: Optional[int] = None,
                 depth: int = 3, base_width: int = 16) -> ResidualUNet:
    """A small residual U-Net denoiser: depth 3, base width 16, plain 3x3 convolutions."""
    return ResidualUNet(input_size, in_channels, num_classes, depth, base_width)
