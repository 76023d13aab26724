"""The issue's acceptance figures, on the defaults a user gets (minutes each: `pytest -m slow`)."""

from __future__ import annotations

import pytest

from lightning_attn.config import compose
from lightning_attn.train import train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("mechanism", "low", "high"),
    [("soft", 90.0, 100.0), ("hard", 80.0, 100.0), ("uniform", 0.0, 60.0)],
)
def test_default_translation_run_reaches_its_bleu(mechanism, low, high):
    result = train(compose([f"attention={mechanism}", "trainer.enable_progress_bar=false"]))
    assert low <= result.metrics["test/bleu"] <= high
