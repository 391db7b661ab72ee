"""Hostile and careless input to the commands (issue 12): each case ends with one line and a non-zero exit,
destroys nothing, and starts no work it cannot finish. The daemon's faults are in
tests/jetson/runtime/test_faults.py."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import yaml

from jetseg.jetson.runners import choose_backend
from tests.fixtures.bundles import threshold_bundle, unet_like_bundle
from tests.fixtures.media import write_png_scans
from tests.fixtures.processes import JETSEG, jetseg, last_line
from tests.fixtures.waiting import free_port, wait_for


@pytest.fixture
def fp32(tmp_path):
    return unet_like_bundle(tmp_path / "fp32")


# --------------------------------------------------------------- 4. calibrate --overwrite, --out ., SIGTERM
def test_calibrate_overwrite_never_replaces_inputs_or_foreign_folders(fp32, tmp_path, tmp_path_factory):
    scans = write_png_scans(tmp_path / "scans", n=8)
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    here = tmp_path_factory.mktemp("cwd")
    before = time.monotonic()
    for out, message in ((scans, "is or holds an input"), (fp32, "is or holds an input"),
                         (tmp_path, "is or holds an input"), (mine, "replaces only a folder jetseg wrote"),
                         (".", "is the working folder")):
        line = last_line(jetseg("calibrate", fp32, "--scans", scans, "--out", out, "--overwrite", cwd=here))
        assert message in line, line
    assert time.monotonic() - before < 60  # refused before any work
    assert (mine / "thesis.txt").read_text() == "years of work"
    assert len(list(scans.rglob("*.png"))) >= 8 and (fp32 / "model.onnx").is_file()


def test_calibrate_cleans_its_work_folder_on_sigterm_and_stale_ones_next_run(fp32, tmp_path):
    scans = write_png_scans(tmp_path / "scans", n=48)
    work = tmp_path / "tmp"
    work.mkdir()
    stale = work / "jetseg-calibrate.999999999.abc"  # a process that no longer exists (SIGKILLed)
    stale.mkdir()
    (stale / "model.fp32.onnx").write_bytes(b"x" * 1000)
    env = dict(os.environ, TMPDIR=str(work))
    proc = subprocess.Popen(JETSEG + ["calibrate", str(fp32), "--scans", str(scans), "--out", str(tmp_path / "o"),
                                      "--count", "32", "--holdout", "8"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        mine = "jetseg-calibrate.%d." % proc.pid
        wait_for(lambda: proc.poll() is not None or any(p.name.startswith(mine) for p in work.iterdir()),
                 timeout=120, every=0.02, what="the calibration's work folder")
        assert proc.poll() is None, proc.communicate()[1]
        assert not stale.exists()  # removed at the start of this run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM, proc.communicate()[1][-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(work.glob("jetseg-calibrate.*")) == []
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


# ------------------------------------------------------------------------------- 5. duplicate sink targets
@pytest.mark.parametrize("sinks", [("file://{d}/rec.mp4", "file://{d}/./rec.mp4"), ("masks://{d}/m", "masks://{d}/m/")])
def test_two_sinks_on_one_target_are_refused(tmp_path, sinks):
    bundle = threshold_bundle(tmp_path / "tiny")
    args = []
    for sink in sinks:
        args += ["--sink", sink.format(d=tmp_path)]
    line = last_line(jetseg("run", "--model", bundle, "--source", "synthetic://ultrasound?frames=3", *args))
    assert "both write to" in line and "give each sink its own file or folder" in line


# -------------------------------------------------------------------------------------- 6. non-finite mean/std
@pytest.mark.parametrize("flag, value", [("--mean", "nan"), ("--std", "inf"), ("--std", "0.5,nan,0.5")])
def test_export_refuses_non_finite_normalisation(tmp_path, flag, value):
    model = tmp_path / "m.onnx"
    from tests.fixtures.models import threshold_onnx

    model.write_bytes(threshold_onnx(32))
    channels = "3" if "," in value else "1"
    line = last_line(jetseg("export", model, "--input-size", "32x32", "--channels", channels, "--classes", "bg,fg",
                            flag, value, "--out", tmp_path / "b"))
    assert "finite" in line and "input.%s" % flag[2:] in line
    assert not (tmp_path / "b").exists()


def test_spec_with_nan_std_is_refused_at_load(tmp_path):
    bundle = threshold_bundle(tmp_path / "tiny")
    spec = yaml.safe_load((bundle / "spec.yaml").read_text())
    spec["input"]["std"] = [float("nan")]
    (bundle / "spec.yaml").write_text(yaml.safe_dump(spec))
    line = last_line(jetseg("run", "--model", bundle, "--check"))
    assert "input.std" in line and "finite" in line


def test_run_check_of_a_camera_that_does_not_exist_says_no_such_device(tmp_path):
    bundle = threshold_bundle(tmp_path / "tiny")
    result = jetseg("run", "--model", bundle, "--source", "v4l2:///dev/video97", "--check")
    assert result.returncode != 0 and "Traceback" not in result.stderr and '"ok": true' not in result.stdout
    assert "no such device /dev/video97" in last_line(result)


@pytest.mark.parametrize("uri", ["dicom://{d}/missing.dcm", "nifti://{d}/missing.nii.gz", "itk://{d}/missing.mha",
                                 "file://{d}/missing.mp4"])
def test_run_check_of_a_file_source_that_does_not_exist_says_so(tmp_path, uri):
    bundle = threshold_bundle(tmp_path / "tiny")
    result = jetseg("run", "--model", bundle, "--source", uri.format(d=tmp_path), "--check")
    assert result.returncode != 0 and "Traceback" not in result.stderr and '"ok": true' not in result.stdout
    assert "missing" in last_line(result) and "does not exist" in last_line(result)


# ------------------------------------------------------------------------------ 10, 11, 12. bench input
def test_bench_refuses_a_live_source_without_a_bound(tmp_path):
    bundle = threshold_bundle(tmp_path / "tiny")
    done = jetseg("bench", bundle, "--reference", bundle, "--data", "udp://127.0.0.1:%d" % free_port(2),
                  "--out", tmp_path / "r", timeout=60)
    assert "is a live source, which never ends; give --frames N" in last_line(done)


def test_bench_refuses_a_reference_of_another_model(tmp_path):
    ref = threshold_bundle(tmp_path / "ref")
    other = threshold_bundle(tmp_path / "other", classes=["background", "cyst"])
    line = last_line(jetseg("bench", other, "--reference", ref, "--data", "synthetic://ultrasound?frames=3",
                            "--out", tmp_path / "r"))
    assert "has classes ['background', 'cyst'] but the --reference" in line
    assert not (tmp_path / "r").exists()


def test_bench_refuses_min_fps_nan(tmp_path):
    bundle = threshold_bundle(tmp_path / "tiny")
    line = last_line(jetseg("bench", bundle, "--reference", bundle, "--data", "synthetic://ultrasound?frames=3",
                            "--min-fps", "nan", "--out", tmp_path / "r"))
    assert "--min-fps is nan; expected a positive number" in line


# ------------------------------------------------------------------------------------- 12. the smaller ones
FACTORIES = '''
import torch
def raises():
    raise RuntimeError("weights server unreachable")
def not_a_module():
    return {"conv": 1}
'''


@pytest.mark.parametrize("name, message", [("raises", "raised RuntimeError: weights server unreachable"),
                                           ("not_a_module", "returned dict; expected a torch.nn.Module")])
def test_export_factory_that_raises_or_returns_no_module_is_one_line(tmp_path, name, message):
    pytest.importorskip("torch")
    (tmp_path / "userfactories.py").write_text(FACTORIES)
    done = jetseg("export", "userfactories:%s" % name, "--input-size", "32x32", "--channels", "1", "--classes",
                  "bg,fg", "--out", tmp_path / "b", env={"PYTHONPATH": str(tmp_path)})
    assert message in last_line(done)


@pytest.mark.parametrize("name", ["model.onnx", "spec.yaml"])
def test_manifest_that_omits_model_or_spec_fails_verification(tmp_path, name):
    bundle = threshold_bundle(tmp_path / "tiny")
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["files"][name]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert "the manifest does not list %s" % name in last_line(jetseg("run", "--model", bundle, "--check"))


def test_bundles_are_created_with_the_mode_the_umask_gives(tmp_path):
    model = tmp_path / "m.onnx"
    from tests.fixtures.models import threshold_onnx

    model.write_bytes(threshold_onnx(32))
    old = os.umask(0o022)
    try:
        done = jetseg("export", model, "--input-size", "32x32", "--channels", "1", "--classes", "bg,fg",
                      "--out", tmp_path / "b")
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o755  # a service user can read it


@pytest.mark.parametrize("option, message", [("threads=-3", "threads"), ("thread=2", "thread")])
def test_bad_backend_options_are_refused(tmp_path, option, message):
    bundle = threshold_bundle(tmp_path / "tiny")
    line = last_line(jetseg("run", "--model", bundle, "--backend-option", option, "--check"))
    assert message in line and choose_backend()[0] in line  # the default backend, auto, names what it ran


def test_stale_work_folder_cleanup_removes_only_dead_calibrations(tmp_path, monkeypatch):
    """Only jetseg-calibrate.<pid>.* folders of processes that are gone are removed; live ones, files and
    other folders in the temporary folder stay."""
    import tempfile

    from jetseg.calibration.workflow import WORK_PREFIX, remove_stale_work_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    stale = tmp_path / ("%s%d.abc" % (WORK_PREFIX, dead.pid))
    live = tmp_path / ("%s%d.abc" % (WORK_PREFIX, os.getpid()))
    for folder in (stale, live, tmp_path / (WORK_PREFIX + "notes"), tmp_path / "user-data"):
        folder.mkdir()
        (folder / "f.txt").write_text("x")
    (tmp_path / ("%s%d.file" % (WORK_PREFIX, dead.pid))).write_text("a file, not a work folder")
    assert remove_stale_work_folders() == [stale]
    assert not stale.exists()
    assert live.is_dir() and (tmp_path / (WORK_PREFIX + "notes")).is_dir() and (tmp_path / "user-data").is_dir()
    assert (tmp_path / ("%s%d.file" % (WORK_PREFIX, dead.pid))).is_file()


@pytest.mark.parametrize("argv, message", [
    (["selftest", "--out", "{file}/x"], "cannot write the report to"),
    (["bench", "{bundle}", "--reference", "{bundle}", "--data", "synthetic://ultrasound?frames=2",
      "--out", "{file}/r"], "cannot write"),
    pytest.param(["distill", "{bundle}", "--student", "unet-tiny", "--scans", "synthetic://ultrasound",
                  "--out", "{tmp}/s", "--dice-weight", "nan"], "--dice-weight nan is invalid",
                 marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="distill needs torch")),
])
def test_an_unusable_out_or_a_non_finite_weight_is_one_line(tmp_path, argv, message):
    """An --out below a file is refused at once (selftest: before its checks), not with a traceback."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    bundle = threshold_bundle(tmp_path / "tiny")
    args = [a.format(file=afile, bundle=bundle, tmp=tmp_path) for a in argv]
    assert message in last_line(jetseg(*args, timeout=120))


def test_selftest_refuses_an_unknown_model_before_any_check(tmp_path):
    before = time.monotonic()
    done = jetseg("selftest", "--out", tmp_path / "report", "--model", "nosuch", timeout=120)
    assert done.returncode == 2
    assert last_line(done) == ("jetseg selftest: error: no bundled model 'nosuch'; bundled models: endoscopy, "
                               "ultrasound, ultrasound-denoise, ultrasound-register")
    assert done.stdout == "" and not (tmp_path / "report").exists()  # no check ran, nothing written
    assert time.monotonic() - before < 60
    denoiser = jetseg("selftest", "--out", tmp_path / "report", "--model", "ultrasound-denoise", timeout=120)
    assert denoiser.returncode != 0 and not (tmp_path / "report").exists()
    assert last_line(denoiser) == ("jetseg selftest: error: selftest checks a segmentation model; bundled model "
                                   "'ultrasound-denoise' is task enhancement (give --model ultrasound or endoscopy)")
