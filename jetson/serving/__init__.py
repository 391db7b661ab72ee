"""Serving a bundle to other machines: a Triton Inference Server whose Python backend runs a jetseg runner
(``jetseg serve``, :mod:`~jetseg.jetson.serving.server`; the model side is
:mod:`~jetseg.jetson.serving.triton_model`)."""
