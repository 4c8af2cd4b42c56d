"""The noise-aware gate refuses equal models at the stated rate (scripts/gate_calibration.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gate_calibration.py"


def calibration():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gate_calibration", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_false_refusal_rate_is_alpha_within_monte_carlo_error() -> None:
    sims, alpha = 800, 0.05
    refused = calibration().refusals(300, 0.0, sims, alpha=alpha, seed=3)
    rate = refused / sims
    margin = 3 * math.sqrt(alpha * (1 - alpha) / sims)  # three Monte Carlo standard errors
    assert abs(rate - alpha) <= margin, (rate, margin)


@pytest.mark.slow  # four bootstraps of per-class metrics per simulation: about two minutes
def test_a_large_drop_is_refused_and_holm_keeps_the_family_rate() -> None:
    module = calibration()
    assert module.refusals(300, 0.12, 60, seed=4) >= 54  # power about 0.99
    sims = 300
    family = module.refusals(300, 0.0, sims, metrics=4, seed=5) / sims
    assert family <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / sims), family
