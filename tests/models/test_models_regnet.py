"""The registration net (vxm-small / vxm-tiny): two inputs, a pixel field, the warp agreeing with
jetseg.flowscores.warp, and an ONNX export with GridSample whose output matches PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from jetseg.flowscores import smooth_field, warp  # noqa: E402
from jetseg.models.archs import build_model  # noqa: E402
from jetseg.models.archs.regnet import SpatialWarp  # noqa: E402
from jetseg.models.export import ExportError, check_onnx, compare_with_torch, torch_to_onnx  # noqa: E402
from tests.fixtures.specs import registration_spec  # noqa: E402


def test_the_net_outputs_a_field_and_starts_near_the_identity():
    model = build_model("vxm-tiny", warped=True).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        flow, warped = model(x, torch.rand(2, 1, 32, 32))
    assert flow.shape == (2, 2, 32, 32) and warped.shape == (2, 1, 32, 32)
    assert float(flow.abs().max()) < 0.01  # the head starts near zero, as VoxelMorph's
    assert float((warped - x).abs().max()) < 0.01


def test_the_warp_is_flowscores_warp():
    rng = np.random.default_rng(0)
    image = rng.random((1, 40, 48)).astype(np.float32)
    flow = smooth_field(3, (40, 48), amplitude=5.0)
    with torch.no_grad():
        got = SpatialWarp((40, 48))(torch.from_numpy(image[None]), torch.from_numpy(flow[None]))[0].numpy()
    np.testing.assert_allclose(got, warp(image, flow), atol=1e-4)


def test_smooth_fields_are_seeded_and_do_not_fold():
    from jetseg.flowscores import folding_fraction

    a, b = smooth_field(7, (64, 64), 4.0), smooth_field(7, (64, 64), 4.0)
    assert a.shape == (2, 64, 64) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, smooth_field(8, (64, 64), 4.0))
    assert 0.5 < float(np.abs(a).mean()) < 4.0 and folding_fraction(a) == 0.0


def test_export_has_two_inputs_and_a_gridsample_warped_output():
    spec = registration_spec(size=32, warped="warped")
    torch.manual_seed(0)
    model = build_model("vxm-tiny", warped=True)
    with torch.no_grad():  # a field that is not ~0 (a shift of 1.5 px and some texture), so the warp is compared
        model.unet.head.weight.normal_(0.0, 0.5)
        model.unet.head.bias.fill_(1.5)
    data = torch_to_onnx(model, spec)
    proto = check_onnx(data, spec)
    assert [i.name for i in proto.graph.input] == ["moving", "fixed"]
    assert [o.name for o in proto.graph.output] == ["flow", "warped"]
    assert "GridSample" in {n.op_type for n in proto.graph.node}
    assert proto.opset_import[0].version == 17
    assert compare_with_torch(model, data, spec) < 1e-3
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    moving, fixed = rng.random((1, 1, 32, 32), dtype=np.float32), rng.random((1, 1, 32, 32), dtype=np.float32)
    flow, warped = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"moving": moving, "fixed": fixed})
    assert np.abs(flow).mean() > 1.0
    np.testing.assert_allclose(warped[0], warp(moving[0], flow[0]), atol=1e-3)


def test_check_onnx_names_the_missing_fixed_input():
    from tests.fixtures.models import conv_model

    with pytest.raises(ExportError, match="the spec expects the inputs named 'moving', 'fixed' "
                                          r"\(the moving image is input.name, the fixed one registration"):
        check_onnx(conv_model().SerializeToString(), registration_spec(size=32, warped=None))


def test_a_dynamic_batch_export_names_the_batch_of_both_inputs_and_outputs():
    spec = registration_spec(size=32, warped="warped")
    model = build_model("vxm-tiny", warped=True)
    proto = check_onnx(torch_to_onnx(model, spec, "dynamic"), spec)
    shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(proto.graph.input) + list(proto.graph.output)}
    assert shapes == {"moving": ["N", 1, 32, 32], "fixed": ["N", 1, 32, 32], "flow": ["N", 2, 32, 32],
                      "warped": ["N", 1, 32, 32]}
    assert compare_with_torch(model, proto.SerializeToString(), spec, batch="dynamic") < 1e-3
