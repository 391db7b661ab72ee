"""The U-Net family (Ronneberger et al., 2015), built for deployment on TensorRT 8.5 and the Xavier DLA.

Encoder: ``depth`` levels of two 3x3 Conv-BN-ReLU blocks, each followed by 2x2 max pooling, channels
``base, 2*base, ...``; a bottleneck of ``base * 2**depth`` channels; decoder: ConvTranspose (k=2, s=2,
p=0) upsampling, concatenation with the skip connection on the channel axis, two Conv-BN-ReLU blocks;
a 1x1 convolution to the class logits. Spatial sizes must be multiples of ``2**depth`` so that every
skip connection lines up without cropping or padding (static shapes, no Resize op).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from jetseg.errors import JetsegError
from jetseg.optional import require

require("torch", "the U-Net models")  # a one-line install hint instead of an ImportError
import torch  # noqa: E402
from torch import nn  # noqa: E402


class ModelConfigError(JetsegError):
    """An architecture was given arguments it cannot be built with."""


def _conv_bn_relu(cin: int, cout: int, separable: bool) -> List[Any]:
    if separable and cin > 1:
        return [nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DoubleConv(nn.Sequential):
    """Two Conv-BN-ReLU blocks (3x3, padding 1): ``(N, cin, H, W) -> (N, cout, H, W)``."""

    def __init__(self, cin: int, cout: int, separable: bool = False) -> None:
        super().__init__(*(_conv_bn_relu(cin, cout, separable) + _conv_bn_relu(cout, cout, separable)))


class UNet(nn.Module):
    """U-Net for 2-D segmentation.

    Args:
        input_size: ``(height, width)`` of the input; both must be multiples of ``2**depth``.
        in_channels: input channels (1 for grey ultrasound, 3 for RGB endoscopy).
        num_classes: output channels: class logits for softmax (background first), 1 for a sigmoid output.
        depth: number of down-sampling steps (1..6).
        base_width: channels of the first level; level ``i`` has ``base_width * 2**i``.
        separable: depthwise-separable 3x3 convolutions (a lighter real-time variant).

    Input ``(N, in_channels, H, W) float32``; output ``(N, num_classes, H, W) float32`` logits.

    Raises:
        ModelConfigError: on a size that is not a multiple of ``2**depth`` or a bad depth/width.
    """

    def __init__(self, input_size: Sequence[int] = (128, 128), in_channels: int = 1, num_classes: int = 2,
                 depth: int = 4, base_width: int = 16, separable: bool = False) -> None:
        super().__init__()
        self.config: Dict[str, Any] = check_config(input_size, in_channels, num_classes, depth, base_width)
        self.config["separable"] = bool(separable)
        widths = [base_width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths[:-1]:
            self.down.append(DoubleConv(cin, w, separable))
            cin = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], separable)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth - 1, -1, -1):
            self.up.append(nn.ConvTranspose2d(widths[i + 1], widths[i], kernel_size=2, stride=2, padding=0))
            self.dec.append(DoubleConv(2 * widths[i], widths[i], separable))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    @property
    def input_size(self) -> Tuple[int, int]:
        size = self.config["input_size"]
        return int(size[0]), int(size[1])

    def forward(self, x: Any) -> Any:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def check_config(input_size: Sequence[int], in_channels: int, num_classes: int, depth: int,
                 base_width: int) -> Dict[str, Any]:
    """Validate U-Net arguments; return them as a plain dict (raises ModelConfigError)."""
    if not (isinstance(depth, int) and 1 <= depth <= 6):
        raise ModelConfigError("U-Net depth %r is invalid; expected an integer from 1 to 6" % (depth,))
    if not (isinstance(base_width, int) and base_width >= 1):
        raise ModelConfigError("U-Net base_width %r is invalid; expected a positive integer" % (base_width,))
    if in_channels not in (1, 3) or not (isinstance(num_classes, int) and num_classes >= 1):
        raise ModelConfigError("U-Net got in_channels=%r, num_classes=%r; expected 1 or 3 input channels and "
                               "at least 1 output class" % (in_channels, num_classes))
    size = list(input_size) if isinstance(input_size, (list, tuple)) else []
    step = 2 ** depth
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 and v % step == 0 for v in size):
        raise ModelConfigError("U-Net input size %s is invalid for depth %d: height and width must be "
                               "multiples of %d (2**depth), e.g. %dx%d; choose another --input-size or depth"
                               % ("x".join(str(v) for v in size) or repr(input_size), depth, step,
                                  step * 8, step * 8))
    return {"input_size": [int(size[0]), int(size[1])], "in_channels": int(in_channels),
            "num_classes": int(num_classes), "depth": int(depth), "base_width": int(base_width)}


def unet(input_size: Sequence[int] = (128, 128), in_channels: int = 1, num_classes: int = 2,
         depth: int = 4, base_width: int = 16) -> UNet:
    """The classic U-Net: depth 4, base width 16, plain 3x3 convolutions."""
    return UNet(input_size, in_channels, num_classes, depth, base_width, separable=False)


def unet_small(input_size: Sequence[int] = (128, 128), in_channels: int = 1, num_classes: int = 2,
               depth: int = 4, base_width: int = 16) -> UNet:
    """A real-time U-Net: depthwise-separable 3x3 convolutions (about 5x fewer weights than unet)."""
    return UNet(input_size, in_channels, num_classes, depth, base_width, separable=True)


def unet_tiny(input_size: Sequence[int] = (32, 32), in_channels: int = 1, num_classes: int = 2,
              depth: int = 2, base_width: int = 4) -> UNet:
    """A tiny U-Net for tests and smoke runs (depth 2, base width 4)."""
    return UNet(input_size, in_channels, num_classes, depth, base_width, separable=False)
