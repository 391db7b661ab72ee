# Minimal local stubs for pycuda (it ships none): only what jetson/device/cuda.py uses.
VERSION: tuple[int, ...]
