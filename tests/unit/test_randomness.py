"""`make test` draws the same examples on every run: the derandomized hypothesis profile (tests/randomness.py)."""
from __future__ import annotations

import pytest
from hypothesis import settings

from tests import randomness


@pytest.mark.skipif(randomness.FUZZING, reason="make fuzz draws at random on purpose")
def test_property_tests_run_derandomized_without_an_example_database() -> None:
    assert settings.get_current_profile_name() == "derandomized"
    assert settings.default.derandomize and settings.default.database is None
    assert randomness.examples(150) == 150
