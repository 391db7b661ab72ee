"""The Jetson device: what it is (info), how engines are keyed to it (key), its power and temperatures
(tegrastats, telemetry), and CUDA memory for TensorRT (cuda).

Every module here imports its heavy or device-only dependency (libcudart, jtop) inside the functions that use
it, so the package imports on any machine.
"""
from __future__ import annotations
