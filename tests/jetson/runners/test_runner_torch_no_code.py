"""torch runner: a bundle never runs code; an edited manifest cannot make it import or call anything (issue 20)."""
from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("torch")

from jetseg.bundle import Bundle  # noqa: E402
from jetseg.errors import RunnerError  # noqa: E402
from jetseg.jetson.runners import open_runner  # noqa: E402
from tests.fixtures.bundles import torch_unet_bundle  # noqa: E402


def _with_architecture(tmp_path, record):
    bundle = torch_unet_bundle(tmp_path / "b").path
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["provenance"]["architecture"] = record
    path.write_text(json.dumps(manifest))
    return Bundle(bundle)


def _planted(tmp_path):
    """A module that leaves a file behind when imported or called."""
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "evil.py").write_text("import pathlib\npathlib.Path(%r).write_text('imported')\n"
                                    "def build(**kw):\n    pathlib.Path(%r).write_text('called')\n"
                                    % (str(tmp_path / "ran"), str(tmp_path / "ran")))
    return folder


@pytest.mark.parametrize("record", [
    {"factory": "os:system", "kwargs": {"command": "touch RAN"}},
    {"factory": "evil:build", "module_path": "PLANTED"},
])
def test_a_factory_in_the_manifest_is_never_imported(tmp_path, monkeypatch, record):
    monkeypatch.chdir(tmp_path)
    record = {k: (str(_planted(tmp_path)) if v == "PLANTED" else v) for k, v in record.items()}
    bundle = _with_architecture(tmp_path, record)
    with pytest.raises(RunnerError, match="was exported from the Python factory %r; a bundle never runs code, "
                                          "so give it on the command line: --backend-option module=" % record["factory"]):
        with open_runner("torch", bundle):
            pass
    assert not (tmp_path / "RAN").exists() and not (tmp_path / "ran").exists() and "evil" not in sys.modules


def test_the_command_line_must_name_the_recorded_factory(tmp_path):
    bundle = _with_architecture(tmp_path, {"factory": "os:system", "kwargs": {"command": "touch RAN"}})
    with pytest.raises(RunnerError, match="module=tests.fixtures.torch_models:build, but bundle .* was exported "
                                          "from 'os:system'"):
        open_runner("torch", bundle, module="tests.fixtures.torch_models:build")


def test_an_architecture_name_must_be_jetsegs_own(tmp_path):
    bundle = _with_architecture(tmp_path, {"name": "os:system", "kwargs": {"command": "touch RAN"}})
    with pytest.raises(RunnerError, match="records the architecture 'os:system', which is not one of jetseg's"):
        open_runner("torch", bundle)
    assert not (tmp_path / "RAN").exists()


def test_a_dropped_in_model_ts_does_not_take_over(tmp_path):
    bundle = torch_unet_bundle(tmp_path / "b").path
    (bundle / "model.ts").write_bytes(b"not listed")
    from jetseg.errors import BundleError

    with pytest.raises(BundleError, match="model.ts is not listed in the manifest"):
        open_runner("torch", bundle)
