"""A bundle is data: its manifest's entries stay inside it, a file it does not list is never used (issue 20)."""
from __future__ import annotations

import json

import pytest

from jetseg.bundle import Bundle, save_bundle
from jetseg.errors import BundleError
from jetseg.spec import Spec


def _edit_manifest(bundle, **changes):
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
    return manifest


@pytest.fixture
def bundle(tmp_path):
    return save_bundle(tmp_path / "b", b"model", Spec(), extra_files={"weights.pt": b"w"}).path


@pytest.mark.parametrize("name, message", [
    ("/proc/self/mem", "expected a path inside the bundle"),
    ("../outside.bin", "expected a path inside the bundle"),
    ("sub/../../outside.bin", "expected a path inside the bundle"),
    ("./model.onnx", "expected a path inside the bundle"),
])
def test_manifest_entries_outside_the_bundle_are_refused(bundle, name, message):
    (bundle.parent / "outside.bin").write_bytes(b"x")
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    _edit_manifest(bundle, files=dict(files, **{name: "0" * 64}))
    with pytest.raises(BundleError, match=message):
        Bundle(bundle)


def test_a_symlink_out_of_the_bundle_is_refused(bundle, tmp_path):
    (tmp_path / "secret").write_bytes(b"s")
    (bundle / "weights.pt").unlink()
    (bundle / "weights.pt").symlink_to(tmp_path / "secret")
    with pytest.raises(BundleError, match="manifest entry 'weights.pt' leads outside the bundle"):
        Bundle(bundle)


def test_a_folder_listed_as_a_file_is_refused(bundle):
    (bundle / "weights.pt").unlink()
    (bundle / "weights.pt").mkdir()
    with pytest.raises(BundleError, match="manifest entry 'weights.pt' is not a regular file"):
        Bundle(bundle)


@pytest.mark.parametrize("digest, shown", [(12345, "an integer"), ("abc", "'abc'"), (None, "null")])
def test_a_hash_that_is_not_a_sha256_is_one_line(bundle, digest, shown):
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    _edit_manifest(bundle, files=dict(files, **{"model.onnx": digest}))
    with pytest.raises(BundleError, match=r"files\['model.onnx'\] is %s; expected a sha256 string" % shown):
        Bundle(bundle)


@pytest.mark.parametrize("name", ["model.ts", "calibration.json", "calibration.cache", "model.fp32.onnx"])
def test_a_used_file_the_manifest_does_not_list_is_refused(bundle, name):
    (bundle / name).write_bytes(b"dropped in later")
    with pytest.raises(BundleError, match="%s is not listed in the manifest, so jetseg will not use it" % name):
        Bundle(bundle)
    assert Bundle(bundle, verify=False).torchscript_path is None  # unverified, still never used


def test_unlisted_weights_are_never_used(bundle):
    files = json.loads((bundle / "manifest.json").read_text())["files"]
    del files["weights.pt"]
    _edit_manifest(bundle, files=files)
    with pytest.raises(BundleError, match="weights.pt is not listed in the manifest"):
        Bundle(bundle)
    assert Bundle(bundle, verify=False).weights_path is None
