"""import-lightness, registries, optional imports, CLI behaviour on bad input."""
from __future__ import annotations

import subprocess
import sys

import pytest

from jetseg.errors import DependencyError, JetsegError
from jetseg.optional import available, require
from jetseg.registry import Registry

HEAVY = ("torch", "onnxruntime", "onnx", "cv2", "tensorrt", "pycuda", "pydicom", "nibabel", "matplotlib")


def _heavy_modules_after(code: str) -> str:
    """Run ``code`` in a fresh interpreter; the HEAVY modules it left imported, comma-separated."""
    code += "\nimport sys\nprint(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip()


def test_import_jetseg_is_light():
    assert _heavy_modules_after("import sys, jetseg, jetseg.spec, jetseg.bundle, jetseg.cli") == ""


def test_cli_help_imports_nothing_heavy():
    assert _heavy_modules_after("from jetseg.cli import build_parser\nbuild_parser()") == ""


def test_registry_suggests_the_closest_name():
    reg = Registry("backend")
    reg.register("onnxrt", "json:dumps")
    reg.register("torch", "json:loads")
    assert reg.get("onnxrt").__name__ == "dumps"
    with pytest.raises(JetsegError, match="unknown backend 'onxrt'; did you mean 'onnxrt'"):
        reg.get("onxrt")
    with pytest.raises(JetsegError, match="known: onnxrt, torch"):
        reg.get("zzz")


def test_require_missing_module_names_the_fix():
    with pytest.raises(DependencyError, match=r"not_a_module_xyz is not installed \(needed for tests\)"):
        require("not_a_module_xyz", "tests")
    assert not available("not_a_module_xyz")


def test_namespace_stub_does_not_count_as_tensorrt(tmp_path, monkeypatch):
    (tmp_path / "fake_ns_pkg").mkdir()
    (tmp_path / "fake_ns_pkg" / "__init__.pyi").write_text("x: int\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not available("fake_ns_pkg")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "jetseg", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("jetseg ")
    for cmd in ("demo", "train", "export", "calibrate", "build", "run", "bench", "doctor"):
        assert run_cli(cmd, "--help").returncode == 0, cmd


def test_unknown_subcommand_is_one_line():
    out = run_cli("frobnicate")
    assert out.returncode == 2
    assert "invalid choice: 'frobnicate'" in out.stderr and "Traceback" not in out.stderr


def test_user_error_is_one_line_without_traceback(tmp_path):
    out = run_cli("calibrate", str(tmp_path / "no-such-bundle"), "--scans", "synthetic://ultrasound",
                  "--out", str(tmp_path / "o"))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "o").exists()


def test_doctor_describes_this_machine():
    out = run_cli("doctor", "--json")
    assert out.returncode == 0, out.stderr
    import json

    info = json.loads(out.stdout)
    assert info["python"] == "%d.%d.%d" % sys.version_info[:3]
    names = {b["name"]: b for b in info["backends"]}
    assert names["onnxrt"]["usable"] is True
