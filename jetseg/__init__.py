"""jetseg: real-time medical image segmentation on NVIDIA Jetson.

``import jetseg`` loads only numpy and PyYAML. Everything heavy (torch, onnxruntime, OpenCV, TensorRT,
the CUDA runtime) is imported or loaded by the component that uses it.
"""
from __future__ import annotations

__version__ = "0.1.0"

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.spec import Spec

__all__ = ["Bundle", "JetsegError", "Spec", "__version__"]
