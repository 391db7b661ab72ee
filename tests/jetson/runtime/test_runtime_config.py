"""Daemon config: YAML sections, errors naming the field, CLI overrides."""
from __future__ import annotations

import pytest

from jetseg.jetson.daemon.config import ConfigError, DaemonConfig
from jetseg.jetson.daemon.flags import apply_overrides, parse_options, parse_roi
from tests.fixtures.paths import REPO


def load(tmp_path, text):
    path = tmp_path / "daemon.yaml"
    path.write_text(text)
    return DaemonConfig.load(path)


def test_full_config_loads_into_typed_sections(tmp_path):
    cfg = load(tmp_path, """
model: {path: /opt/bundles/us}
backend: {name: onnxrt, options: {threads: 2}}
source: {uri: "udp://127.0.0.1:5000", stall_timeout_s: 3, reconnect_max_s: 4}
sinks:
  - http://127.0.0.1:8080
  - {uri: "masks:///tmp/m", options: {every: 2}}
roi: {mode: [10, 20, 300, 200], roi_only: true}
postprocess: {smoothing: 0.25, min_area_px: 30}
pipeline: {max_frames: 100}
logging: {json: true, interval_s: 0}
web: {token: s3cret}
device: {telemetry: "off"}
""")
    assert cfg.model.path == "/opt/bundles/us"
    assert cfg.backend.options == {"threads": 2}
    assert cfg.source.stall_timeout_s == 3.0 and cfg.source.reconnect_max_s == 4.0
    assert [s.uri for s in cfg.sinks] == ["http://127.0.0.1:8080", "masks:///tmp/m"]
    assert cfg.sinks[1].options == {"every": 2}
    assert cfg.roi.mode == [10, 20, 300, 200] and cfg.roi.roi_only is True
    assert cfg.postprocess.smoothing == 0.25 and cfg.logging.json is True and cfg.web.token == "s3cret"


def test_shorthands_and_defaults(tmp_path):
    cfg = load(tmp_path, "model: bundles/us\nsource: synthetic://endoscopy\nroi: auto\nsinks: null://\n")
    assert cfg.model.path == "bundles/us" and cfg.source.uri == "synthetic://endoscopy"
    assert cfg.roi.mode == "auto" and [s.uri for s in cfg.sinks] == ["null://"]
    relative = load(tmp_path, "roi: {relative: [0.1, 0, 0.8, 1]}\n").roi
    assert relative.mode == {"relative": [0.1, 0.0, 0.8, 1.0]} and relative.roi_only is False
    assert load(tmp_path, "") == DaemonConfig()


@pytest.mark.parametrize("text, message", [
    ("postprocess: {smoothing: 1.5}", r"config field 'postprocess.smoothing' is 1.5; expected a number in \[0, 1\)"),
    ("postprocess: {min_area_px: -1}", "config field 'postprocess.min_area_px' is -1; expected a non-negative"),
    ("roi: {mode: sector}", "config field 'roi.mode' is 'sector'; expected auto, spec, none or"),
    ("roi: {mode: [1, 2, 3]}", r"config field 'roi.mode' is \[1, 2, 3\]; expected \[x, y, width, height\]"),
    ("roi: {mode: {relative: [0, 0, 2, 1]}}", r"config field 'roi.mode' is \{'relative': \[0, 0, 2, 1\]\}; "
     r"expected \{relative: \[x, y, width, height\]\} as fractions of the frame \(x, y in \[0, 1\)"),
    ("source: {stall_timeout_s: 0}", "config field 'source.stall_timeout_s' is 0; expected a positive number"),
    ("source: {realtime: maybe}", "config field 'source.realtime' is 'maybe'; expected true or false"),
    ("sinks: [masks]", "config field 'sinks\\[0\\].uri' is 'masks'; expected a sink URI"),
    ("sinks: []", "config field 'sinks' is \\[\\]; expected a list of at least one sink URI"),
    ("pipeline: {queue_size: 0}", "config field 'pipeline.queue_size' is 0; expected an integer 1..1024"),
    ("pipeline: {scheduler: fibers}", "config field 'pipeline.scheduler' is 'fibers'; expected one of auto, "
     "threaded, latency, serial"),
    ("logging: {level: loud}", "config field 'logging.level' is 'loud'; expected one of debug, info"),
    ("postproces: {smoothing: 0.1}", "unknown config field 'postproces' \\(did you mean 'postprocess'\\?\\)"),
    ("source: {uri: x, stall_timeout: 1}", "unknown config field 'source.stall_timeout' \\(did you mean "
                                          "'source.stall_timeout_s'\\?\\)"),
    ("backend: 5", "config section 'backend' is 5; expected a mapping of fields"),
    ("- a\n- b", "a daemon config must be a mapping of sections"),
])
def test_errors_name_the_field_and_the_expected_value(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, text)
    assert str(info.value).startswith(str(tmp_path / "daemon.yaml"))
    assert "\n" not in str(info.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config .*nope.yaml: No such file or directory; pass an "
                                          "existing YAML file to --config"):
        DaemonConfig.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load(tmp_path, "model: [unclosed")


def test_cli_overrides_win_and_merge_options(tmp_path):
    cfg = load(tmp_path, "backend: {options: {threads: 2, provider: cpu}}\nsinks: [null://]\nroi: auto\n")
    out = apply_overrides(cfg, {"backend.options": {"threads": 1}, "sinks": ["masks://d", "http://127.0.0.1:1"],
                                "roi.mode": [0, 0, 10, 10], "source.uri": "dicom://x.dcm", "model.path": None})
    assert out.backend.options == {"threads": 1, "provider": "cpu"}
    assert [s.uri for s in out.sinks] == ["masks://d", "http://127.0.0.1:1"]
    assert out.roi.mode == [0, 0, 10, 10] and out.source.uri == "dicom://x.dcm"
    assert cfg.roi.mode == "auto"  # the loaded config is not modified
    with pytest.raises(ConfigError, match="config field 'postprocess.smoothing' is 2.0"):
        apply_overrides(cfg, {"postprocess.smoothing": 2.0})


def test_flag_parsers():
    assert parse_roi("auto") == "auto" and parse_roi(" 1, 2,3,4 ") == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="--roi '1,2,3': expected auto, spec, none or x,y,w,h"):
        parse_roi("1,2,3")
    assert parse_roi("relative:0.1, 0.05,0.8,0.9") == {"relative": [0.1, 0.05, 0.8, 0.9]}
    assert parse_roi("Relative:0,0,1,1") == {"relative": [0.0, 0.0, 1.0, 1.0]}
    assert parse_roi("0,0,1,1") == [0, 0, 1, 1]  # bare numbers stay pixels
    for bad in ("relative:0.5,0,0.6,1", "relative:0.1,0.1,0.5", "relative:a,b,c,d", "relative:0.1,0.1,nan,0.5"):
        with pytest.raises(ConfigError, match=r"--roi '%s': expected relative:x,y,w,h as fractions of the frame "
                                              r"\(x, y in \[0, 1\), width, height in \(0, 1\]" % bad):
            parse_roi(bad)
    with pytest.raises(ConfigError, match=r"--roi '0.1,0.1,0.5,0.5': expected .* relative:x,y,w,h in fractions"):
        parse_roi("0.1,0.1,0.5,0.5")
    assert parse_options(["threads=2", "provider=cuda", "flag=true", "x=1.5"], "--backend-option") == {
        "threads": 2, "provider": "cuda", "flag": True, "x": 1.5}
    with pytest.raises(ConfigError, match="--backend-option 'threads': expected key=value"):
        parse_options(["threads"], "--backend-option")


SERVICE_DIR = REPO / "jetson" / "service"


def test_the_example_config_is_valid():
    cfg = DaemonConfig.load(SERVICE_DIR / "daemon.example.yaml")
    assert cfg.source.uri == "v4l2:///dev/video0" and cfg.roi.mode == "auto" and cfg.roi.roi_only is True
    assert cfg.sinks[0].uri == "http://127.0.0.1:8080" and cfg.sinks[1].options == {"every": 5}
    assert cfg.logging.json is True and cfg.device.telemetry == "auto"


def test_the_systemd_unit(tmp_path):
    import shutil
    import subprocess
    import sys

    text = (SERVICE_DIR / "jetseg.service").read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "WatchdogSec=30",
                 "ExecStart=/opt/jetseg/.venv/bin/jetseg run --config /etc/jetseg/daemon.yaml --log-json"):
        assert line in text.splitlines()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    jetseg = __import__("pathlib").Path(sys.executable).with_name("jetseg")
    unit = tmp_path / "jetseg.service"
    unit.write_text(text.replace("/opt/jetseg/.venv/bin/jetseg", str(jetseg)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "jetseg.service" not in result.stderr, result.stderr
