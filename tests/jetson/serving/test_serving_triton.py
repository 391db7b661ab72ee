"""A real Triton Inference Server (PyTriton's tritonserver) on loopback, and the triton runner against it.

Skipped only when the nvidia-pytriton wheel (or tritonclient) is not installed (pip install 'jetseg[serve]').
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from jetseg.bundle import Bundle
from jetseg.cli import main
from jetseg.errors import RunnerError
from jetseg.jetson.runners import open_runner
from tests.fixtures.bundles import threshold_bundle
from tests.fixtures.triton import skip_without_server, triton_server

skip_without_server()  # the binary is found, not imported (setup.sh installs the wheel without gevent & co)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("triton")
    bundle = Bundle(threshold_bundle(work / "tb"))
    server = triton_server(work, bundle).start(timeout_s=120)
    yield bundle, server
    server.stop()


def url(server):
    return "grpc://127.0.0.1:%d" % server.grpc_port


def frames(bundle, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((1,) + tuple(bundle.spec.input_shape[1:]), dtype=np.float32) for _ in range(n)]


def test_clients_get_the_masks_of_local_inference(served):
    bundle, server = served
    batches = frames(bundle, 12)
    with open_runner("onnxrt", bundle, threads=1) as local:
        expected = [bundle.spec.decode(local.infer(b)) for b in batches]

    def client(offset):
        with open_runner("triton", bundle, url=url(server), model="tb") as remote:
            return [bundle.spec.decode(remote.infer(b)) for b in batches[offset:] + batches[:offset]]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, range(4)))
    for offset, masks in enumerate(results):
        for got, want in zip(masks, expected[offset:] + expected[:offset]):
            np.testing.assert_array_equal(got, want)


def test_wrong_model_name_is_one_line(served, capsys, tmp_path):
    bundle, server = served
    with pytest.raises(RunnerError, match=r"has no ready model 'nope' \(models: tb\); give --backend-option model"):
        open_runner("triton", bundle, url=url(server), model="nope").activate()


def test_a_killed_server_fails_clearly_and_the_runner_reconnects(tmp_path):
    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    server = triton_server(tmp_path, bundle).start(timeout_s=120)
    batch = frames(bundle, 1)[0]
    runner = open_runner("triton", bundle, url=url(server), model="tb", timeout_s=2).activate()
    try:
        first = runner.infer(batch)
        server.process.kill()
        server.process.wait()
        with pytest.raises(RunnerError, match=r"Triton server at grpc://127\.0\.0\.1:\d+: .*the next frame reconnects"):
            runner.infer(batch)
        server.start(timeout_s=120)
        np.testing.assert_array_equal(runner.infer(batch), first)
    finally:
        runner.deactivate()
        server.stop()


def test_unreachable_server_at_activation(tmp_path):
    from tests.fixtures.triton import free_port

    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    with pytest.raises(RunnerError, match="Triton server at grpc://127.0.0.1:%d" % 1):
        open_runner("triton", bundle, url="grpc://127.0.0.1:1", timeout_s=0.5).activate()
    assert free_port() > 0


def test_bad_url_names_the_form(tmp_path):
    bundle = Bundle(threshold_bundle(tmp_path / "tb"))
    with pytest.raises(RunnerError, match=r"url='grpc://h:8001,model=x': expected grpc://HOST:PORT"):
        open_runner("triton", bundle, url="grpc://h:8001,model=x")
    assert main(["serve", str(tmp_path / "tb"), "--max-batch", "0"]) == 2
