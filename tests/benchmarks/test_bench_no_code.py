"""jetseg bench: an edited manifest runs no code through the naive-loop row; --overwrite spares inputs (issue 20)."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from jetseg.benchmarks.suite import Settings, run_benchmark  # noqa: E402
from jetseg.errors import JetsegError  # noqa: E402
from tests.fixtures.bundles import torch_unet_bundle  # noqa: E402

FAST = dict(min_time=0.02, warmup=1, min_runs=3, progress=False, backends=["onnxrt"], peers=False, plots=False)


def test_naive_loop_skips_a_factory_bundle_instead_of_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundle = torch_unet_bundle(tmp_path / "b").path
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["provenance"]["architecture"] = {"factory": "os:system", "kwargs": {"command": "touch RAN"}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    report = run_benchmark([], bundle, "synthetic://ultrasound?frames=2&seed=1", settings=Settings(**FAST))
    reasons = [s["reason"] for s in report["skipped"]]
    assert any(r.startswith("naive-loop peer skipped: ") and "a bundle never runs code" in r for r in reasons), reasons
    assert not (tmp_path / "RAN").exists()


def test_overwrite_never_replaces_the_reference_or_a_users_folder(tmp_path):
    bundle = torch_unet_bundle(tmp_path / "b").path
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    for out, message in ((bundle, "is or holds an input"), (tmp_path, "is or holds an input"),
                         (mine, "replaces only a folder jetseg wrote")):
        with pytest.raises(JetsegError, match=message):
            run_benchmark([], bundle, "synthetic://ultrasound?frames=2", out_dir=out, overwrite=True,
                          settings=Settings(**FAST))
    assert (mine / "keep.txt").read_text() == "mine" and (bundle / "model.onnx").is_file()
