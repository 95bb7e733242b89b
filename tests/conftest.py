"""Shared test set-up: Hypothesis profiles and the optional oracle lanes.

Hypothesis profiles, picked by NUMPY_RESNEXT_PROFILE (default "dev"; .ci/run sets "ci"):
  dev  few examples, quick local runs
  ci   more examples, derandomized (the same examples every run), no deadline
Oracle lanes: tests that need a real framework take the ``paddle`` or ``torch`` fixture,
which skips with a reason when the framework is not installed.
"""

import importlib
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NUMPY_RESNEXT_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "reference" / "fixtures"


def _optional(name, why):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install
        pytest.skip(f"{name} is not installed ({type(exc).__name__}): {why}")


@pytest.fixture(scope="session")
def paddle():
    """The real Paddle, for the live oracle lane (skips when absent)."""
    return _optional("paddle", "the live Paddle lane needs `pip install paddlepaddle==3.3.1`")


@pytest.fixture(scope="session")
def torch():
    """The real torch, for the torch oracle lane (skips when absent)."""
    return _optional("torch", "the torch lane needs `pip install torch==2.13.0` (CPU build)")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def fixtures_dir():
    return FIXTURES
