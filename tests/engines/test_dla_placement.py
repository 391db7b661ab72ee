"""The U-Net DLA rules applied to real ONNX graphs (no TensorRT needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from jetseg.engines import engine_info
from jetseg.engines.placement import (
    Finding,
    LayerPlacement,
    equal_scales,
    format_report,
    onnx_rules,
    scale_findings,
)
from tests.fixtures import fake_tensorrt_dla


def unet_like():
    """A decoder with every layer kind the rules care about, good and bad variants side by side."""
    f = np.float32
    inits = [numpy_helper.from_array(np.ones((4, 4, 2, 2), f), "up_ok_w"),
             numpy_helper.from_array(np.ones((4, 4, 4, 4), f), "up_bad_w"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], f), "scales2"),
             numpy_helper.from_array(np.array([1, 1, 1.5, 1.5], f), "scales15"),
             numpy_helper.from_array(np.array([1, 1, 8, 8], f), "scales8"),
             numpy_helper.from_array(np.array([1, 4, 32, 32], np.int64), "sizes"),
             numpy_helper.from_array(np.array([], f), "empty")]
    nodes = [
        helper.make_node("ConvTranspose", ["x", "up_ok_w"], ["a"], name="up_k2s2p0", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ConvTranspose", ["x", "up_bad_w"], ["b"], name="up_k4s2p1", kernel_shape=[4, 4], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b"], ["c"], name="cat_channels", axis=1),
        helper.make_node("Concat", ["a", "b"], ["c2"], name="cat_height", axis=2),
        helper.make_node("Resize", ["x", "", "scales2"], ["r1"], name="resize_nearest2", mode="nearest"),
        helper.make_node("Resize", ["x", "", "scales15"], ["r2"], name="resize_1_5", mode="nearest"),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["r3"], name="resize_sizes", mode="nearest"),
        helper.make_node("Resize", ["x", "", "scales2"], ["r4"], name="resize_align", mode="linear",
                         coordinate_transformation_mode="align_corners"),
        helper.make_node("Resize", ["x", "", "scales8"], ["r5"], name="resize_linear8", mode="linear"),
        helper.make_node("Resize", ["x", "", "scales2"], ["r6"], name="resize_linear2", mode="linear"),
        helper.make_node("Softplus", ["x"], ["s"], name="softplus"),
        helper.make_node("Relu", ["x"], ["relu_out"], name="relu"),
    ]
    outs = ["c", "c2", "r1", "r2", "r3", "r4", "r5", "r6", "s", "relu_out"]
    graph = helper.make_graph(nodes, "unet_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unet_rules():
    found = {f.node: f.reason for f in onnx_rules(unet_like())}
    assert set(found) == {"up_k4s2p1", "cat_height", "resize_1_5", "resize_sizes", "resize_align",
                          "resize_linear8", "softplus"}
    assert found["up_k4s2p1"].startswith("ConvTranspose with padding [1, 1, 1, 1]; the DLA needs padding 0")
    assert found["cat_height"] == "Concat along axis 2; the DLA concatenates along channels (axis 1) only"
    assert found["resize_1_5"] == "Resize scales [1.5, 1.5] are not integers >= 1; the DLA needs integer scales"
    assert found["resize_sizes"].startswith("Resize uses 'sizes'")
    assert "align_corners" in found["resize_align"]
    assert found["resize_linear8"] == "Resize linear scale 8.0 exceeds the DLA limit of 4"
    assert found["softplus"] == "Softplus has no DLA implementation"


def test_report_lines():
    rows = [LayerPlacement("conv1", "CONVOLUTION", "DLA"), LayerPlacement("up", "DECONVOLUTION", "GPU", "padding")]
    lines = format_report(rows)
    assert lines[0] == ("DLA placement estimate (can_run_on_DLA, before the build): 1 of 2 layers on the DLA, 1 on "
                        "the GPU (GPU_FALLBACK)")
    assert lines[1].split() == ["GPU", "up", "DECONVOLUTION", "padding"]
    static = format_report([], [Finding("n", "Softplus", "no DLA")])
    assert static[0] == "DLA placement (from the ONNX rules): 1 node(s) will run on the GPU"


def test_the_project_unet_is_dla_friendly():
    """The U-Net the bundled models use exports to layers the Xavier DLA can run (no GPU fallback by the rules)."""
    import onnx
    import pytest

    pytest.importorskip("torch")  # optional on the Jetson
    from jetseg.models.archs import build_model
    from jetseg.models.export import torch_to_onnx
    from tests.fixtures.specs import tiny_spec

    model = build_model("unet-small", input_size=(32, 32))
    proto = onnx.load_from_string(torch_to_onnx(model, tiny_spec()))  # the project's one export path
    assert {"Conv", "ConvTranspose", "Concat"} <= {n.op_type for n in proto.graph.node}
    assert onnx_rules(proto) == []


def test_jetseg_rules_agree_with_the_double_built_from_nvinfer_h():
    """jetseg's ONNX rules and the TensorRT double's (written from TensorRT 8.5's NvInfer.h) agree per node."""
    model = unet_like()
    constants = {i.name: numpy_helper.to_array(i).reshape(-1).tolist() for i in model.graph.initializer}
    gpu = {f.node for f in onnx_rules(model)}
    for node in model.graph.node:
        assert fake_tensorrt_dla.can_run_on_dla(node, constants) == (node.name not in gpu), node.name


def _concat_add_pool():
    nodes = [helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
             helper.make_node("Add", ["a", "b"], ["s"], name="add"),
             helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("c", "s", "p")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 8, 8])
                                           for n in ("a", "b")], vi)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_int8_equal_range_rules_warn_on_unequal_cache_scales():
    model = _concat_add_pool()
    equal = {"a": 0.01, "b": 0.01, "c": 0.01, "s": 0.02, "p": 0.01}
    assert scale_findings(model, equal) == []
    found = {f.node: f.reason for f in scale_findings(model, {"a": 0.01, "b": 0.03, "c": 0.03, "s": 0.03, "p": 0.02})}
    assert set(found) == {"cat", "add", "pool"}
    assert found["cat"] == ("INT8 on the DLA needs equal ranges for the inputs (unconfirmed for Concat); the cache "
                            "gives a 1.27, b 3.81")
    assert found["add"].startswith("INT8 on the DLA needs equal ranges for the inputs (confirmed)")
    assert found["pool"].startswith("INT8 on the DLA needs equal ranges for the input and output (confirmed)")
    assert scale_findings(model, {"a": 0.01, "b": 0.03}) == []  # outputs without a scale: the layers are FP16


def test_engine_inspector_json_gives_the_real_placement():
    rows = [LayerPlacement(n, "X", "DLA") for n in ("conv1", "relu1", "up", "cat", "conv2")]
    layers = [{"name": n, "type": "X", "device": d, "inputs": ["t_" + n], "outputs": ["o_" + n], "precision": "INT8"}
              for n, d in (("conv1", "DLA"), ("relu1", "DLA"), ("up", "GPU"), ("cat", "DLA"), ("conv2", "DLA"))]
    for detailed in (True, False):
        parsed = engine_info.parse(fake_tensorrt_dla.engine_layers(layers, detailed))
        assert [(x.name, x.device) for x in parsed if x.device != "glue"] == [
            ("{ForeignNode[conv1...relu1]}", "DLA"), ("up", "GPU"), ("{ForeignNode[cat...conv2]}", "DLA")]
        actual = engine_info.actual_placement(rows, parsed)
        assert [r.device for r in actual] == ["DLA", "DLA", "GPU", "DLA", "DLA"]
        assert engine_info.differences(rows, actual) == ["DLA placement: 1 layer(s) differ from the estimate",
                                                         "  up: estimated DLA, built on the GPU"]


def test_inspector_names_as_tensorrt_writes_them():
    """GPU fusions ``A + B``, Myelin ForeignNodes on the GPU, reformats (trex's example engine graph JSON)."""
    info = ('{"Layers": [{"Name": "Reformatting CopyNode for Input Tensor 0 to conv1 + relu1", "LayerType": '
            '"Reformat"}, {"Name": "conv1 + relu1", "LayerType": "CaskConvolution"}, {"Name": '
            '"{ForeignNode[up...cat]}", "LayerType": "Myelin"}, {"Name": "{ForeignNode[conv2]}", "LayerType": "X"}],'
            ' "Bindings": ["input", "logits"]}')
    parsed = engine_info.parse(info)
    assert [(x.device, x.members) for x in parsed] == [("glue", []), ("GPU", ["conv1", "relu1"]),
                                                       ("GPU", ["up", "cat"]), ("DLA", ["conv2"])]


def test_equal_scales_raises_each_group_to_its_largest_and_leaves_nothing_to_find():
    model = _concat_add_pool()
    scales = {"a": 0.01, "b": 0.03, "c": 0.02, "s": 0.05, "p": 0.02}
    equal = equal_scales(model, scales)
    # a, b and c share Concat's range, a and b the Add's, a and p the pool's: one group; s (the Add's output) is free
    assert equal == {"a": 0.03, "b": 0.03, "c": 0.03, "s": 0.05, "p": 0.03}
    assert scale_findings(model, equal) == []
    assert equal_scales(model, {"a": 0.01, "b": 0.03}) == {"a": 0.01, "b": 0.03}  # FP16 layers join nothing


def test_the_bundled_unet_gets_no_equal_range_finding_after_equal_scales():
    import onnx

    from jetseg.models import bundled

    model = onnx.load(str(Path(bundled("ultrasound")) / "model.onnx"))
    tensors = sorted({t for n in model.graph.node for t in list(n.input) + list(n.output)} - {
        i.name for i in model.graph.initializer})
    scales = {t: 0.01 * (1 + (i * 7919) % 13) for i, t in enumerate(tensors)}  # deliberately unequal
    assert any(f.op == "Concat" for f in scale_findings(model, scales))
    equal = equal_scales(model, scales)
    assert scale_findings(model, equal) == []
    assert all(equal[t] >= scales[t] for t in scales)  # raised only: nothing clips
