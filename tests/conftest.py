"""Shared fixtures.

Ray is started once per test session (2 CPUs, no dashboard) by the ``ray_session`` fixture;
tests that need Ray take it as an argument. Tests that need a real head (``ray start``) start
and stop it themselves on 127.0.0.1.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
