"""Models that end in Sigmoid (or Softmax) export with output.activation probabilities and decode right;
multi-label sigmoid models (one channel per class, overlapping) run end to end."""
from __future__ import annotations

import numpy as np
import pytest

from jetseg.bundle import Bundle
from jetseg.cli import main
from jetseg.jetson.frames.frame import Frame
from jetseg.jetson.runners import open_runner
from jetseg.jetson.sinks import SinkContext, open_sink
from jetseg.spec import Spec
from tests.fixtures.models import threshold_onnx

pytest.importorskip("torch")


def _frame() -> np.ndarray:
    """Grey 16x16: left third 0.1, middle 0.45, right 0.8 (scaled to 0..255)."""
    image = np.zeros((16, 16), np.uint8)
    image[:, :5], image[:, 5:11], image[:, 11:] = 26, 115, 204
    return image


def test_sigmoid_ended_model_records_probabilities_and_does_not_mark_the_whole_frame(tmp_path):
    out = tmp_path / "b"
    assert main(["export", "tests.fixtures.torch_models:build_sigmoid", "--input-size", "16x16", "--channels", "1",
                 "--classes", "background,lesion", "--output-kind", "sigmoid", "--out", str(out)]) == 0
    bundle = Bundle(out)
    assert bundle.spec.output.activation == "probabilities"
    assert bundle.manifest.provenance["export"]["output_activation"] == "probabilities"
    with open_runner("onnxrt", bundle) as runner:
        mask = bundle.spec.decode(runner.infer(bundle.spec.preprocess(_frame())))[0]
    assert mask[:, 11:].all() and not mask[:, :11].any()  # 0.8 > 0.5 only; not the whole frame


def test_logits_model_keeps_activation_logits(tmp_path):
    src = tmp_path / "m.onnx"
    src.write_bytes(threshold_onnx(16, kind="sigmoid"))
    assert main(["export", str(src), "--input-size", "16x16", "--channels", "1", "--output-kind", "sigmoid",
                 "--out", str(tmp_path / "b")]) == 0
    assert Bundle(tmp_path / "b").spec.output.activation == "logits"


def test_multilabel_model_exports_runs_overlays_and_writes_masks(tmp_path):
    out = tmp_path / "ml"
    assert main(["export", "tests.fixtures.torch_models:build_multilabel", "--input-size", "16x16", "--channels",
                 "1", "--classes", "background,organ,lesion", "--output-kind", "sigmoid", "--out", str(out)]) == 0
    bundle = Bundle(out)
    spec = bundle.spec
    assert spec.multilabel and spec.output.activation == "probabilities"
    with open_runner("onnxrt", bundle) as runner:
        output = runner.infer(spec.preprocess(_frame()))
    labels = spec.decode_labels(output)[0]
    assert labels[0][:, 5:].all() and not labels[0][:, :5].any()  # organ: brighter than 0.3
    assert labels[1][:, 11:].all() and not labels[1][:, :11].any()  # lesion: brighter than 0.6, inside the organ
    mask = spec.decode(output)[0]
    assert set(np.unique(mask[:, :5])) == {0} and set(np.unique(mask[:, 11:])) == {2}
    from jetseg.jetson.frames.postprocess import PostProcessor
    from jetseg.jetson.frames.result import Result

    post = PostProcessor(spec)
    full, areas, _ = post(output, (16, 16), (0, 0, 16, 16), None)
    result = Result(frame=Frame(index=0, image=_frame(), timestamp=0.0), mask=full, roi=(0, 0, 16, 16), spec=spec,
                    areas_px=areas, stamps={"captured": 0.0})
    assert result.overlay().shape == (16, 16, 3) and areas["lesion"] == 16 * 5
    sink = open_sink("masks://%s" % (tmp_path / "masks"))
    sink.open(SinkContext(spec=spec))
    sink.write(result)
    sink.close()
    assert list((tmp_path / "masks").rglob("*.png"))
    assert Spec.load(out / "spec.yaml").output.activation == "probabilities"
