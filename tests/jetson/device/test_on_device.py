"""On-device tests: run on the Jetson with ``./setup.sh test-device`` (skipped elsewhere by marker).

For every bundled model: FP32 / FP16 / INT8 engines built here and their masks compared with ONNX Runtime
FP32 (mean Dice), DLA INT8 with GPU fallback and its placement report, CUDA-graph replay, the daemon for 30 s
through the trt backend, and ``jetseg bench`` saving its report under benchmarks/results/<device>/.
Bundles are copied to a temporary folder first, so the repository's bundles are left untouched.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jetseg.bundle import ENGINES_DIR, Bundle
from jetseg.engines.build import build_engine
from jetseg.jetson.runners import open_runner
from jetseg.jetson.sources import open_source
from tests.fixtures.paths import REPO

pytestmark = [pytest.mark.jetson, pytest.mark.trt, pytest.mark.gpu]

BUNDLES = sorted(p for p in (REPO / "models" / "bundles").glob("*") if (p / "spec.yaml").is_file())
FRAMES = 16
# Minimum mean foreground Dice against ONNX Runtime FP32 masks on the same frames.
MIN_DICE = {"fp32": 0.99, "fp16": 0.98, "int8": 0.95}


def jetseg(*args, timeout=1800):
    done = subprocess.run([sys.executable, "-m", "jetseg", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def synthetic_kind(bundle: Path) -> str:
    from jetseg.models.synthetic import KINDS

    return next(kind for kind in KINDS if kind in bundle.name)


def copy_bundle(src: Path, dest: Path) -> Bundle:
    shutil.copytree(str(src), str(dest), ignore=shutil.ignore_patterns(ENGINES_DIR))
    return Bundle(dest)


@pytest.fixture(scope="module", params=BUNDLES or [None], ids=[p.name for p in BUNDLES] or ["no-bundles"])
def source_bundle(request) -> Path:
    if request.param is None:
        pytest.fail("no bundled models under models/bundles/ to test with (git pull, or 'jetseg train')")
    return request.param


@pytest.fixture(scope="module")
def fp32(source_bundle, tmp_path_factory) -> Bundle:
    return copy_bundle(source_bundle, tmp_path_factory.mktemp("fp32") / source_bundle.name)


@pytest.fixture(scope="module")
def int8(source_bundle, fp32, tmp_path_factory) -> Bundle:
    out = tmp_path_factory.mktemp("int8") / (source_bundle.name + "-int8")
    kind = synthetic_kind(source_bundle)
    from jetseg import trtcompat

    jetseg("calibrate", fp32.path, "--scans", "synthetic://%s?frames=120&seed=3" % kind, "--target", "tensorrt",
           "--trt-version", trtcompat.short_version(trtcompat.installed_version()), "--out", out)
    bundle = Bundle(out)
    assert (bundle.path / "calibration.cache").is_file()
    return bundle


@pytest.fixture(scope="module")
def frames(source_bundle):
    with open_source("synthetic://%s?frames=%d&seed=11&start=5000" % (synthetic_kind(source_bundle), FRAMES)) as src:
        return [f.image for f in src]


def masks(backend: str, bundle: Bundle, images, **opts) -> np.ndarray:
    with open_runner(backend, bundle, **opts) as runner:
        return np.stack([bundle.spec.decode(runner.infer(bundle.spec.preprocess(img)))[0] for img in images])


def dice_vs_fp32(bundle: Bundle, reference: Bundle, images, **opts) -> float:
    from jetseg.scores import mean_dice

    ref = masks("onnxrt", reference, images)
    got = masks("trt", bundle, images, **opts)
    dice = mean_dice(got, ref, reference.spec.num_classes)
    print("%s %s: mean Dice vs ONNX Runtime FP32 = %.4f" % (bundle.name, opts, dice))
    return dice


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gpu_engine_matches_onnxruntime(fp32, frames, precision):
    outcome = build_engine(fp32, precision, force=True)
    assert outcome.engine_path.is_file() and not outcome.reused
    assert outcome.record["key"]["precision"] == precision and outcome.record["timings"]["build_s"] > 0
    assert build_engine(fp32, precision).reused  # up to date: not rebuilt
    assert dice_vs_fp32(fp32, fp32, frames, precision=precision) >= MIN_DICE[precision]


def test_int8_gpu_engine_from_qdq_matches_onnxruntime(fp32, int8, frames):
    outcome = build_engine(int8, "int8", force=True)
    assert outcome.record["flags"]["int8"] == "qdq"
    assert dice_vs_fp32(int8, fp32, frames, precision="int8") >= MIN_DICE["int8"]


def test_dla_int8_with_gpu_fallback_and_placement_report(fp32, int8, frames):
    from jetseg.jetson.device.info import describe

    if describe().dla_cores == 0:
        pytest.skip("this Jetson has no DLA")
    outcome = build_engine(int8, "int8", dla_core=0, force=True)
    print("\n".join(outcome.report))
    assert outcome.report[0].startswith("DLA placement estimate ")
    assert outcome.record["flags"]["int8"] == "cache" and outcome.record["flags"]["gpu_fallback"]
    assert any(row["device"] == "DLA" for row in outcome.record["placement"])
    actual = outcome.record["placement_actual"]  # what TensorRT decided (engine inspector)
    assert actual["unknown_because"] is None and any(x["device"] == "DLA" for x in actual["engine_layers"])
    assert dice_vs_fp32(int8, fp32, frames, precision="int8", dla_core=0) >= MIN_DICE["int8"]


def test_cuda_graph_replay_gives_the_same_masks(fp32, frames):
    build_engine(fp32, "fp16")
    plain = masks("trt", fp32, frames, precision="fp16")
    graphed = masks("trt", fp32, frames, precision="fp16", cuda_graph=True)
    assert np.array_equal(plain, graphed)


def test_engine_of_an_older_model_is_refused(fp32, tmp_path):
    import onnx

    from jetseg.bundle import save_bundle
    from jetseg.errors import RunnerError

    old = copy_bundle(fp32.path, tmp_path / "old")
    build_engine(old, "fp16")
    model = onnx.load(str(old.model_path))
    model.doc_string = "retrained"  # any change to the model changes its sha256
    new = save_bundle(tmp_path / "new", model.SerializeToString(), old.spec)
    shutil.copytree(str(old.path / ENGINES_DIR), str(new.path / ENGINES_DIR))
    with pytest.raises(RunnerError, match="no usable engine .*: model: engine "):
        open_runner("trt", new, precision="fp16").activate()
    rebuilt = build_engine(new, "fp16")
    assert not rebuilt.reused and not (new.path / ENGINES_DIR / build_engine(old, "fp16").key.name).exists()


def test_daemon_runs_30_s_through_trt(source_bundle, tmp_path):
    bundle = copy_bundle(source_bundle, tmp_path / source_bundle.name)
    build_engine(bundle, "fp16")
    out = tmp_path / "masks"
    done = jetseg("run", "--model", bundle.path, "--backend", "trt", "--backend-option", "precision=fp16",
                  "--source", "synthetic://%s?realtime=1&fps=30" % synthetic_kind(source_bundle),
                  "--sink", "masks://%s" % out, "--sink", "null://", "--duration", "30", timeout=300)
    assert "error" not in done.stderr.lower(), done.stderr[-2000:]
    assert len(list(out.rglob("*.png"))) > 100  # 30 s at up to 30 fps


def test_bench_saves_results_for_this_device(source_bundle, int8, tmp_path):
    from jetseg.jetson.device.info import describe

    info = describe()
    device = "%s-jp%s" % (info.soc or "jetson", info.jetpack or info.l4t or "unknown")
    reference = copy_bundle(source_bundle, tmp_path / source_bundle.name)
    candidate = copy_bundle(int8.path, tmp_path / int8.path.name)
    build_engine(reference, "fp16")
    build_engine(candidate, "int8")
    out = REPO / "benchmarks" / "results" / device / source_bundle.name
    jetseg("bench", candidate.path, "--reference", reference.path, "--backend", "onnxrt,trt",
           "--data", "synthetic://%s?frames=50&seed=21&start=6000" % synthetic_kind(source_bundle),
           "--out", out, "--overwrite", "--no-naive", timeout=3600)
    assert (out / "report.json").is_file()
