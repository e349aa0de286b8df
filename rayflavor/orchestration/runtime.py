"""Connecting to Ray: one rule for every command.

``address`` given (or ``RAY_ADDRESS`` set, as in a ``ray job submit`` driver): join that
cluster. Otherwise start an embedded local Ray sized to this machine (all its CPUs, no
dashboard). A no-op when Ray is already initialised (tests, notebooks).
"""

from __future__ import annotations

import os

import ray


def ensure_ray(address: str | None = None) -> None:
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
