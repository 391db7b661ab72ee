"""One MODEL_CARD.md writer for trained and distilled bundles (jetseg/training/card.py)."""
from __future__ import annotations

import pytest

from tests.fixtures import provenance
from tests.fixtures.specs import tiny_spec

torch = pytest.importorskip("torch")


def _headings(card: bytes):
    return [line for line in card.decode("utf-8").splitlines() if line.startswith("#")]


def test_trained_and_distilled_cards_come_from_one_writer_with_the_same_sections():
    import jetseg.training.distill_report as distill_report
    import jetseg.training.train as train
    from jetseg.training.card import model_card

    assert not hasattr(train, "model_card") and not hasattr(distill_report, "model_card")
    assert not hasattr(train, "evaluate_uri")
    spec = tiny_spec()
    trained = model_card(spec, provenance.trained(), torch.nn.Linear(4, 3)).decode("utf-8")
    student = model_card(spec, provenance.distilled(), torch.nn.Linear(4, 3)).decode("utf-8")
    common = ["## Architecture", "## Data", "## Held-out accuracy", "## Limits"]
    assert [h for h in _headings(trained.encode()) if h in common] == common
    assert [h for h in _headings(student.encode()) if h in common] == common
    assert "## Training" in trained and "## Distillation" not in trained
    assert "## Distillation" in student and "MACs per frame" in student and "vs the teacher" in student
    for card in (trained, student):
        assert "15 parameters" in card and "not for diagnosis or any clinical use" in card
    assert "**0.9000** (lesion 0.9000)" in trained and "**0.9700 vs the teacher** (gate 0.95)" in student
    assert "jetseg train --data synthetic://ultrasound?frames=40 --out t" in trained

