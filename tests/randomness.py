"""Who owns the randomness of the property and fuzz tests (hypothesis and schemathesis). `make test` runs them
derandomized: each test draws the same examples on every run and machine (its seed is derived from the test), and
no example database carries failures from one run into the next. PODIUM_HYPOTHESIS_PROFILE=fuzz (`make fuzz`)
draws fresh examples from PODIUM_FUZZ_SEED, PODIUM_FUZZ_SCALE times as many, so a failure replays with its seed.
Loaded by tests/conftest.py before any test module."""
from __future__ import annotations

import os
import random

from hypothesis import settings

PROFILE = os.environ.get("PODIUM_HYPOTHESIS_PROFILE", "derandomized")
FUZZING = PROFILE == "fuzz"
SEED: int | None = int(os.environ.get("PODIUM_FUZZ_SEED") or random.getrandbits(32)) if FUZZING else None
SCALE = int(os.environ.get("PODIUM_FUZZ_SCALE", "10")) if FUZZING else 1

settings.register_profile("derandomized", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, database=None, deadline=None, print_blob=True)
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """A test's number of examples: n in `make test`, SCALE times n in `make fuzz`."""
    return n * SCALE
