"""What flows between the runtime's stages, below sources, pipeline and sinks alike.

- :mod:`~jetseg.jetson.frames.frame`: :class:`Frame`, one captured frame as a source delivers it;
- :mod:`~jetseg.jetson.frames.slot`: the hand-overs (:class:`Slot`, newest frame wins; :class:`Queue`);
- :mod:`~jetseg.jetson.frames.roi`: which part of the frame the model sees;
- :mod:`~jetseg.jetson.frames.postprocess`: model output -> full-frame mask and areas (the task's post-processor:
  :mod:`~jetseg.jetson.frames.enhance`; :mod:`~jetseg.jetson.frames.register` with its
  :mod:`~jetseg.jetson.frames.reference` and :mod:`~jetseg.jetson.frames.motion` for registration);
- :mod:`~jetseg.jetson.frames.result`: :class:`Result`, one processed frame as every sink receives it;
- :mod:`~jetseg.jetson.frames.metrics`: the counters and latencies the pipeline reports.

Nothing here imports sources, runners, pipeline, sinks or the daemon.
"""
