"""The daemon in-process: finite runs, SIGHUP-style reload, systemd notifications, default model, errors."""
from __future__ import annotations

import json
import os
import socket

import pytest

from jetseg.jetson.daemon.assembly import default_bundle
from jetseg.jetson.daemon.config import ConfigError, DaemonConfig
from jetseg.jetson.daemon.flags import apply_overrides
from jetseg.jetson.daemon.service import Daemon, sd_notify, watchdog_interval
from tests.fixtures.waiting import count_lines, run_in_thread, wait_for

SMALL = "synthetic://ultrasound?width=160&height=120"


def config_for(bundle, source, sinks, **more):
    data = {"model": str(bundle.path), "backend": {"options": {"threads": 1}}, "source": source,
            "sinks": sinks, "logging": {"interval_s": 0}, "device": {"telemetry": "off"}}
    data.update(more)
    return DaemonConfig.from_dict(data)


def test_finite_source_runs_to_its_end_and_exits_0(tiny_bundle, tmp_path):
    out = tmp_path / "masks"
    daemon = Daemon(config_for(tiny_bundle, SMALL + "&frames=9", ["masks://%s" % out, "null://"]))
    assert daemon.run() == 0
    assert daemon.exit_reason == "source ended"
    assert len(list((out / "masks").glob("*.png"))) == 9
    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(9))
    assert set(records[0]["stamps"]) == {"captured", "read", "preprocessed", "inferred", "postprocessed",
                                          "sink"}
    assert daemon.metrics.health()["status"] == "stopped"


def test_reload_rebuilds_what_changed_and_survives_a_bad_file(tiny_bundle, tmp_path):
    path = tmp_path / "daemon.yaml"
    first, second = tmp_path / "a", tmp_path / "b"

    def write(sink_dir, smoothing):
        path.write_text("model: %s\nbackend: {options: {threads: 1}}\nsource: '%s&fps=20&realtime=1'\n"
                        "sinks: ['masks://%s']\npostprocess: {smoothing: %s}\nlogging: {interval_s: 0}\n"
                        "device: {telemetry: 'off'}\n" % (tiny_bundle.path, SMALL, sink_dir, smoothing))

    write(first, 0.0)
    daemon = Daemon(DaemonConfig.load(path), config_path=str(path))
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: count_lines(first / "frames.jsonl") >= 3, what="masks in the first directory")
        runner_before = daemon.parts.runner
        write(second, 0.5)
        daemon.request_reload()
        wait_for(lambda: count_lines(second / "frames.jsonl") >= 3, what="masks in the new directory")
        assert daemon.reloads == 1
        assert daemon.config.postprocess.smoothing == 0.5
        assert daemon.parts.runner is runner_before  # model and backend unchanged: runner kept
        done_in_first = count_lines(first / "frames.jsonl")
        # a broken file is reported and the daemon keeps running on the previous configuration
        path.write_text("postprocess: {smoothing: 7}\n")
        daemon.request_reload()
        before = count_lines(second / "frames.jsonl")
        wait_for(lambda: count_lines(second / "frames.jsonl") >= before + 3, what="masks after a bad reload")
        assert daemon.reloads == 1 and daemon.config.postprocess.smoothing == 0.5
        assert count_lines(first / "frames.jsonl") == done_in_first
    finally:
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}


def test_reload_that_changes_the_model_swaps_the_runner(tiny_bundle, tmp_path):
    from tests.fixtures.bundles import threshold_bundle as make_bundle

    other = make_bundle(tmp_path / "other", size=16)
    base = config_for(tiny_bundle, SMALL + "&fps=20&realtime=1", ["null://"])
    configs = [base, apply_overrides(base, {"model.path": str(other)})]
    daemon = Daemon(base, reload_config=lambda: configs[-1])
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: daemon.metrics.frames >= 3, what="frames")
        old_runner = daemon.parts.runner
        daemon.request_reload()
        wait_for(lambda: daemon.reloads == 1, what="the reload")
        assert daemon.parts.runner is not old_runner and not old_runner.is_active
        assert daemon.parts.runner.spec.input.size == (16, 16)
        frames = daemon.metrics.frames
        wait_for(lambda: daemon.metrics.frames >= frames + 3, what="frames after the reload")
    finally:
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}


def test_systemd_notifications(tiny_bundle, tmp_path, monkeypatch):
    address = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == pytest.approx(0.1)
    daemon = Daemon(config_for(tiny_bundle, SMALL + "&fps=20&realtime=1", ["null://"]))
    thread, result = run_in_thread(daemon)
    messages = []
    try:
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(server.recv(4096).decode())
        assert messages[0].startswith("READY=1")
    finally:
        daemon.request_stop()
        thread.join(30)
    while not any("STOPPING=1" in m for m in messages):
        messages.append(server.recv(4096).decode())
    server.close()
    assert result == {"code": 0}
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sd_notify("READY=1") is False  # not under systemd: nothing to do


def test_watchdog_is_withheld_when_a_thread_is_stuck(tiny_bundle):
    from jetseg.jetson.pipeline import Pipeline
    from tests.fixtures.streams import GateSink

    daemon = Daemon(config_for(tiny_bundle, SMALL + "&fps=20&realtime=1", ["null://"]))
    daemon.start()
    try:
        wait_for(lambda: daemon.metrics.frames >= 2, what="frames")
        assert daemon.alive()
        assert daemon.parts.pipeline.responsive(5.0)
        # a pipeline whose sink never returns from write() is not responsive once its beat is old
        gate = GateSink()
        stuck = Pipeline(daemon.parts.reader, daemon.parts.runner, [("stuck", gate)])
        daemon.parts.pipeline.stop()
        daemon.parts.pipeline.wait(10)
        stuck.start()
        wait_for(lambda: gate.release.is_set() or stuck.beats["sink:stuck"] > stuck.started, what="a sink beat")
        wait_for(lambda: not stuck.responsive(0.3), timeout=10, what="the stuck sink to be noticed")
        gate.release.set()
        stuck.stop()
        stuck.wait(10)
    finally:
        daemon.parts.pipeline = None
        daemon.shutdown()


def test_default_model_is_the_bundled_one_or_a_clear_error(monkeypatch):
    import jetseg.models as models

    monkeypatch.delattr(models, "bundled", raising=False)
    with pytest.raises(ConfigError, match="no --model given and this install has no bundled models; pass --model"):
        default_bundle()

    def missing(name):
        from jetseg.errors import BundleError

        raise BundleError("models/bundles/ultrasound-unet is not a model bundle directory")

    monkeypatch.setattr(models, "bundled", missing, raising=False)
    with pytest.raises(ConfigError, match="the bundled ultrasound model is not available .*; pass --model BUNDLE"):
        default_bundle()
    monkeypatch.setattr(models, "bundled", lambda name: "/opt/bundles/%s-unet" % name, raising=False)
    assert default_bundle() == "/opt/bundles/ultrasound-unet"


def test_startup_errors_close_what_was_opened(tiny_bundle, tmp_path):
    from jetseg.errors import JetsegError

    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))
    port_holder.listen(1)
    busy = port_holder.getsockname()[1]
    masks = tmp_path / "m"
    daemon = Daemon(config_for(tiny_bundle, SMALL, ["masks://%s" % masks, "http://127.0.0.1:%d" % busy]))
    try:
        with pytest.raises(JetsegError) as info:
            daemon.start()
    finally:
        port_holder.close()
    assert str(busy) in str(info.value)
    assert daemon.parts.sinks_open is False
    assert not daemon.parts.runner.is_active
    with pytest.raises(ConfigError, match="config field 'device.telemetry' is 'nowhere:fn'; expected auto or off "
                                          r"\(a config names no code"):
        Daemon(config_for(tiny_bundle, SMALL, ["null://"], device={"telemetry": "nowhere:fn"}))


def test_reload_that_fails_midway_restarts_the_previous_configuration(tiny_bundle, tmp_path):
    first = tmp_path / "a"
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    base = config_for(tiny_bundle, SMALL + "&fps=20&realtime=1", ["masks://%s?png=0" % first])
    broken = apply_overrides(base, {"sinks": ["masks://%s?png=0" % first, "http://127.0.0.1:%d" % busy]})
    daemon = Daemon(base, reload_config=lambda: broken)
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: count_lines(first / "frames.jsonl") >= 3, what="masks")
        daemon.request_reload()  # the http sink cannot bind: the switch fails after the old pipeline stopped
        wait_for(lambda: daemon.restarts == 1, what="the fallback to the previous configuration")
        before = count_lines(first / "frames.jsonl")
        wait_for(lambda: count_lines(first / "frames.jsonl") >= before + 3, what="masks after the failed reload")
        assert daemon.reloads == 0 and daemon.config == base
        assert [name for name, _ in daemon.parts.sinks] == ["masks"]
    finally:
        holder.close()
        daemon.request_stop()
        thread.join(30)
    assert result == {"code": 0}


def test_periodic_status_line_has_structured_fields(tiny_bundle):
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("jetseg.daemon")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    daemon = Daemon(config_for(tiny_bundle, SMALL + "&fps=20&realtime=1", ["null://"],
                               logging={"interval_s": 0.2}))
    thread, result = run_in_thread(daemon)
    try:
        wait_for(lambda: any(getattr(r, "fields", {}).get("event") == "status" and r.fields["frames"] > 0
                             for r in records), what="a status line")
    finally:
        daemon.request_stop()
        thread.join(30)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert result == {"code": 0}
    status = [r for r in records if getattr(r, "fields", {}).get("event") == "status"][-1]
    assert status.fields["status"] in ("ok", "degraded") and status.fields["sinks"]["null"]["written"] > 0
    assert "fps" in status.getMessage() and "capture-to-sink p50" in status.getMessage()
    events = [getattr(r, "fields", {}).get("event") for r in records]
    assert events[0] == "sink_open" and "started" in events and events[-1] == "stopped"


def test_a_paced_finite_source_ends_and_is_never_reopened(tiny_bundle, tmp_path):
    """synthetic://...?frames=N&realtime=1 behaves like a scanner, but it has an end: the daemon exits 0 there."""
    out = tmp_path / "masks"
    daemon = Daemon(config_for(tiny_bundle, SMALL + "&frames=12&fps=30&realtime=1",
                               ["masks://%s" % out, "http://127.0.0.1:0"]))
    thread, result = run_in_thread(daemon)
    thread.join(timeout=60)
    assert not thread.is_alive(), "the daemon reopened a finite source instead of ending"
    assert result.get("code") == 0, result
    assert daemon.exit_reason == "source ended"
    assert daemon.metrics.reconnects == 0
    assert daemon.metrics.source_state == "ended"  # what the web viewer tells its pages ("source ended")
    assert daemon.metrics.health()["status"] == "stopped"
