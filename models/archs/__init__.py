"""The architecture registry: U-Net family members by name (segmentation; ``unet-denoise`` for enhancement).

    from jetseg.models.archs import ARCHITECTURES, build_model
    model = build_model("unet", input_size=(128, 128), in_channels=1, num_classes=2)

Every architecture is built to deploy: static shapes, ONNX opset 17, upsampling by ConvTranspose
(k=2, s=2, p=0, DLA friendly), concatenation on channels, only ops TensorRT 8.5 supports.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

from jetseg.registry import Registry

#: Architecture factories by name: ``factory(**kwargs)`` returns a ``torch.nn.Module``.
ARCHITECTURES: Registry[Callable[..., Any]] = Registry("architecture")
ARCHITECTURES.register("unet", "jetseg.models.archs.unet:unet",
                       "classic U-Net: Conv-BN-ReLU x2 per level, depth 4, base width 16")
ARCHITECTURES.register("unet-small", "jetseg.models.archs.unet:unet_small",
                       "real-time U-Net: depthwise-separable convolutions, depth 4, base width 16")
ARCHITECTURES.register("unet-tiny", "jetseg.models.archs.unet:unet_tiny",
                       "tiny U-Net for tests: depth 2, base width 4")
ARCHITECTURES.register("unet-denoise", "jetseg.models.archs.denoise:unet_denoise",
                       "residual U-Net denoiser (enhancement): output = input + U-Net(input), depth 3, base width 16")
ARCHITECTURES.register("vxm-small", "jetseg.models.archs.regnet:vxm_small",
                       "2-D VoxelMorph-style registration U-Net: moving + fixed -> field (pixels), depth 3, width 16")
ARCHITECTURES.register("vxm-tiny", "jetseg.models.archs.regnet:vxm_tiny",
                       "tiny registration net for tests: depth 2, base width 4")
#: architectures of registration models (two inputs, a displacement field out); the others segment
REGISTRATION_ARCHS = ("vxm-small", "vxm-tiny")


def build_model(name: str, **kwargs: Any) -> Any:
    """Build the architecture registered as ``name`` (a ``torch.nn.Module``) with ``kwargs``."""
    return ARCHITECTURES.get(name)(**kwargs)


def describe(name: str, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The record stored in a bundle's provenance so that the torch runner can rebuild the model."""
    return {"name": ARCHITECTURES.check(name), "kwargs": dict(kwargs)}
