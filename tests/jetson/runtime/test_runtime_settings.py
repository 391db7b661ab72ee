"""Pipeline defaults are declared once (PipelineConfig and the config sections); overrides are checked by name."""
from __future__ import annotations

import pytest

from jetseg.jetson.daemon.assembly import run_config, run_overrides, run_pipeline
from jetseg.jetson.daemon.config import DaemonConfig, DeviceConfig
from jetseg.jetson.pipeline import ConfigError, Pipeline, PipelineConfig, ThreadedScheduler
from tests.fixtures.media import disc_frame
from tests.fixtures.streams import ListSource


def test_the_pipeline_and_its_scheduler_take_their_defaults_from_pipeline_config(runner):
    pipeline = Pipeline(ListSource([disc_frame(0)]), runner, [], scheduler="threaded")
    assert pipeline.settings == PipelineConfig(scheduler="threaded")
    assert isinstance(pipeline.scheduler, ThreadedScheduler)
    assert pipeline.scheduler.settings == pipeline.settings
    assert ThreadedScheduler(live=False).settings == PipelineConfig()


def test_pipeline_overrides_replace_the_given_settings_and_unknown_ones_are_named(runner):
    given = PipelineConfig(queue_size=3, max_frames=5)
    pipeline = Pipeline(ListSource([disc_frame(0)]), runner, [], settings=given, max_frames=2)
    assert pipeline.settings == PipelineConfig(queue_size=3, max_frames=2) and given.max_frames == 5
    with pytest.raises(ConfigError, match=r"unknown config field 'pipeline.queue_szie' \(did you mean "
                                          r"'pipeline.queue_size'\?\); known fields: pipeline.duration_s, "):
        Pipeline(ListSource([disc_frame(0)]), runner, [], queue_szie=2)
    with pytest.raises(ConfigError, match="config field 'pipeline.sink_queue' is 0; expected an integer 1..1024"):
        Pipeline(ListSource([disc_frame(0)]), runner, [], sink_queue=0)


def test_run_pipeline_starts_from_the_config_defaults(tiny_bundle):
    config = run_config(tiny_bundle, "synthetic://ultrasound")
    expected = DaemonConfig(device=DeviceConfig(telemetry="off"))
    expected.model.path, expected.source.uri = str(tiny_bundle.path), "synthetic://ultrasound"
    assert config == expected.validate()
    assert run_overrides()["duration_s"] == "pipeline.duration_s"
    assert {"realtime", "smoothing", "roi_only", "max_frames", "scheduler"} <= set(run_overrides())


def test_run_pipeline_applies_overrides_to_a_given_config(tiny_bundle):
    base = DaemonConfig.from_dict({"backend": {"name": "onnxrt", "options": {"threads": 1}},
                                   "pipeline": {"queue_size": 2}})
    config = run_config(tiny_bundle, "synthetic://ultrasound", config=base, max_frames=4, smoothing=0.5,
                        backend_options={"provider": "cpu"}, roi=[0, 0, 8, 8])
    assert config.backend.name == "onnxrt" and config.backend.options == {"threads": 1, "provider": "cpu"}
    assert (config.pipeline.queue_size, config.pipeline.max_frames) == (2, 4)
    assert config.postprocess.smoothing == 0.5 and config.roi.mode == [0, 0, 8, 8]


def test_run_pipeline_names_an_unknown_argument_and_the_known_ones(tiny_bundle):
    with pytest.raises(ConfigError, match=r"unknown run_pipeline argument 'duration' \(did you mean "
                                          r"'duration_s'\?\); known arguments: auto_frames, duration_s, "):
        run_pipeline(tiny_bundle, "synthetic://ultrasound?frames=3", duration=1.0)
