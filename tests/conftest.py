"""Both tiers: hypothesis' profile is chosen before any test module builds its settings (tests/randomness.py)."""
from __future__ import annotations

import pytest

from tests import randomness


@pytest.hookimpl(tryfirst=True)  # before hypothesis' plugin reads --hypothesis-seed
def pytest_configure(config: pytest.Config) -> None:
    if randomness.FUZZING and config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(randomness.SEED)


def pytest_report_header() -> str:
    seed = f", seed {randomness.SEED} (replay: make fuzz SEED={randomness.SEED})" if randomness.FUZZING else ""
    return f"hypothesis profile: {randomness.PROFILE}{seed}"
