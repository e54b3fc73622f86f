"""Shared pytest set-up: the Hypothesis profile and the devices to run on.

Strategies, tensor factories and tolerances live in ``tests/helpers.py``, not here.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings

# Reproducible runs: the same examples every time (no example database, derandomized).
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
# More and fresh examples, for a long run by hand: pytest --hypothesis-profile=thorough
settings.register_profile(
    "thorough", parent=settings.get_profile("ci"), derandomize=False, max_examples=1000
)
settings.load_profile("ci")

CUDA = torch.cuda.is_available()
NO_CUDA_REASON = "needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


def pytest_collection_modifyitems(config, items):
    """Skip every ``@pytest.mark.cuda`` test, with the reason, where there is no GPU."""
    if CUDA:
        return
    skip = pytest.mark.skip(reason=NO_CUDA_REASON)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def devices() -> list[str]:
    """Every device this machine can run on: ``["cpu"]``, plus ``"cuda"`` with a GPU."""
    return list(DEVICES)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Run the test once per available device."""
    return torch.device(request.param)
