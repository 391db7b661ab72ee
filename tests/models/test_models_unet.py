"""U-Net family: shapes, deployment-friendly layers, constructor errors, registry."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from jetseg.errors import JetsegError  # noqa: E402
from jetseg.models.archs import ARCHITECTURES, build_model, describe  # noqa: E402
from jetseg.models.archs.unet import ModelConfigError, UNet  # noqa: E402


@pytest.mark.parametrize("name", ["unet", "unet-small", "unet-tiny"])
def test_output_shape_matches_input(name):
    model = build_model(name, input_size=(32, 48), in_channels=3, num_classes=3, depth=2, base_width=4).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 48))
    assert tuple(out.shape) == (2, 3, 32, 48)
    assert out.dtype == torch.float32


def test_layers_are_deployment_friendly():
    model = UNet((64, 64), 1, 2, depth=3, base_width=4)
    ups = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == 3
    for up in ups:  # DLA runs ConvTranspose only with padding 0; k=2 s=2 doubles exactly
        assert up.kernel_size == (2, 2) and up.stride == (2, 2) and up.padding == (0, 0)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Upsample" not in kinds  # no Resize op in the graph


def test_small_variant_is_lighter():
    full = build_model("unet", input_size=(64, 64))
    small = build_model("unet-small", input_size=(64, 64))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) * 4 < count(full)


def test_size_must_be_multiple_of_two_to_the_depth():
    with pytest.raises(ModelConfigError) as err:
        UNet(input_size=(100, 128), depth=4)
    msg = str(err.value)
    assert "100x128" in msg and "multiples of 16" in msg and "depth 4" in msg
    assert "\n" not in msg
    assert isinstance(err.value, JetsegError)


@pytest.mark.parametrize("kwargs, text", [
    ({"depth": 0}, "depth 0 is invalid"),
    ({"base_width": 0}, "base_width 0 is invalid"),
    ({"in_channels": 2}, "in_channels=2"),
])
def test_bad_arguments(kwargs, text):
    with pytest.raises(ModelConfigError, match=text):
        UNet(input_size=(64, 64), **kwargs)


def test_registry_suggests_close_name():
    with pytest.raises(JetsegError, match="did you mean 'unet-small'"):
        build_model("unet-smal")
    assert {"unet", "unet-small", "unet-tiny"} <= set(ARCHITECTURES.names())
    assert describe("unet", {"depth": 4}) == {"name": "unet", "kwargs": {"depth": 4}}
