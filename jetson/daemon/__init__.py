"""The runtime's top: a config, the parts built from it, and the service that keeps them running.

- :mod:`~jetseg.jetson.daemon.config`: :class:`DaemonConfig`, one typed section per part;
- :mod:`~jetseg.jetson.daemon.assembly`: runner, source, sinks and pipeline built from a config;
  :func:`~jetseg.jetson.daemon.assembly.run_pipeline` is the one-call form;
- :mod:`~jetseg.jetson.daemon.service`: :class:`Daemon`, the process behind ``jetseg run`` (signals,
  reload, systemd notification).

It imports sources, runners, pipeline and sinks; none of them imports it.
"""
