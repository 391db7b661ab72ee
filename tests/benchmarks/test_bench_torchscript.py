"""The naive-loop row (PyTorch eager) of a bundle exported from TorchScript: its model.ts is the reference."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from jetseg.benchmarks.suite import Settings, plan_rows  # noqa: E402
from jetseg.bundle import Bundle  # noqa: E402
from jetseg.cli import main  # noqa: E402
from tests.fixtures import torch_models  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx legacy exporter


def test_bench_has_a_naive_loop_row_for_a_torchscript_bundle(tmp_path, capsys) -> None:
    ts = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(torch_models.build().eval()), str(ts))
    assert main(["export", str(ts), "--input-size", "16x16", "--channels", "1", "--out", str(tmp_path / "b")]) == 0
    bundle = Bundle(tmp_path / "b")
    skipped: list = []
    rows = plan_rows(bundle, [], Settings(backends=["onnxrt", "torch"], peers=False), skipped)
    assert [(r.backend, r.peer) for r in rows] == [("onnxrt", "onnxrt-fp32"), ("torch", None), ("torch", "naive-loop")]
    assert skipped == []
