"""``jetseg run`` with a registration bundle (docs/runtime.md, "Registration"): ``--reference``, ``--check``, and
the refusals, each in one line without a traceback."""
from __future__ import annotations

import json

from jetseg.cli import main
from tests.fixtures.bundles import known_field_bundle, smoother_bundle
from tests.fixtures.processes import main_error


def test_run_registers_each_frame_against_the_reference_it_is_given(tmp_path, capsys):
    bundle = known_field_bundle(tmp_path / "reg")
    lines = tmp_path / "rec"
    code = main(["run", "--model", str(bundle), "--source", "synthetic://ultrasound?frames=3", "--reference",
                 "previous", "--sink", "masks://%s?png=0" % lines])
    assert code == 0, capsys.readouterr().err
    records = [json.loads(r) for r in (lines / "frames.jsonl").read_text().splitlines()]
    assert [r["reference"] for r in records] == ["previous"] * 3 and all(r["motion"]["mean_px"] > 0 for r in records)
    assert main(["run", "--model", str(bundle), "--reference", "first", "--check"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["config"]["postprocess"]["reference"] == "first"
    missing = tmp_path / "missing.png"
    line = main_error(capsys, ["run", "--model", bundle, "--reference", missing, "--check"])
    assert "postprocess.reference %r is not a file; give postprocess.reference (--reference) first, previous or " \
           "an image file" % str(missing) in line
    line = main_error(capsys, ["run", "--model", bundle, "--source", "synthetic://ultrasound?frames=2",
                           "--sink", "masks://%s" % (tmp_path / "m")])
    assert "writes class masks, and this model's spec.task is registration (no mask)" in line
    seg = smoother_bundle(tmp_path / "enh")
    line = main_error(capsys, ["run", "--model", seg, "--reference", "previous", "--check"])
    assert "postprocess.reference is 'previous'; only registration models have a reference image" in line


def test_selftest_runs_a_registration_bundle_with_its_fixed_image(tmp_path, monkeypatch):
    import numpy as np
    import pytest

    import jetseg.models
    from jetseg.bundle import Bundle
    from jetseg.cli import selftest as selftest_cli

    bundle = known_field_bundle(tmp_path / "reg")
    monkeypatch.setattr(jetseg.models, "bundled", lambda name: bundle)
    state = selftest_cli._State(tmp_path, "ultrasound", 8)
    checks = {name: fn for name, _, fn in selftest_cli.portable_checks(state)}
    assert "-> (1, 1, 32, 32) float32" in checks["preprocessing"]()
    assert checks["onnxruntime"]()[0].endswith("output (1, 2, 32, 32)")
    spec = Bundle(bundle).spec
    field = np.zeros((1, 2, 32, 32), np.float32)
    detail, data = selftest_cli.agreement(spec, field, field + 0.25, "A vs B")
    assert data["epe_p95"] == pytest.approx(np.hypot(0.25, 0.25)) and detail.startswith("A vs B: field end-point")
    with pytest.raises(AssertionError, match="A vs B: field end-point error p95 1.414 px; expected <= 0.5 px"):
        selftest_cli.agreement(spec, field, field + 1.0, "A vs B")
