"""The TensorRT runtime side, plain modules shared by the runner and both apps: the engine store and its layout
(:mod:`.store`), the device key engines are filed under (:mod:`.key`), which engine a bundle needs
(:mod:`.plan`), CUDA memory (:mod:`.cuda`), the calibration cache format (:mod:`.cache`) and which layers of an
INT8 model stay float (:mod:`.floatlayers`).

The runner (``jetseg.jetson.runners.trt``) loads engines; ``jetseg.engines`` builds them. Nothing here
imports the runners or the apps. Every module imports tensorrt (and loads libcudart) inside the functions that
use them, so the package imports on any machine.
"""
