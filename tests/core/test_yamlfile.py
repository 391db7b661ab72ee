"""read_yaml: one line for every bad file, a deeply nested one included (issue 20)."""
from __future__ import annotations

import pytest

from jetseg.errors import SpecError
from jetseg.yamlfile import read_yaml


def test_yaml_nested_5000_deep_is_one_line(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(SpecError, match="daemon.yaml nests too deeply for a config"):
        read_yaml(path, SpecError, "config")


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "daemon.yaml"
    path.write_text("a: [1, 2")
    with pytest.raises(SpecError, match="daemon.yaml is not valid YAML: "):
        read_yaml(path, SpecError, "config")
