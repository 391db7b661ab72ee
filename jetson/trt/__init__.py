"""The TensorRT runtime side, in one place: the runner (:mod:`.runner`), the engine store and its layout
(:mod:`.store`), the device key engines are filed under (:mod:`.key`), which engine a bundle needs
(:mod:`.plan`) and CUDA memory (:mod:`.cuda`).

The runner loads engines; it never builds one (``jetseg.calibration.engine`` builds them). Every module
imports tensorrt/pycuda inside the functions that use them, so the package imports on any machine.
"""
