"""Shared fixtures.

Ray is started once per test session (2 CPUs, no dashboard) by the ``ray_session`` fixture;
tests that need Ray take it as an argument. Tests that need a real head (``ray start``) start
and stop it themselves on 127.0.0.1; multi-node tests use ``helpers.loopback_cluster``.

Every Ray of the test run stays on loopback: ``helpers.LOOPBACK_RAY_ENV`` is set here, before
anything imports ray, so the session's Ray, the embedded Ray of a CLI run and every subprocess
(which inherit the environment) register on 127.0.0.1 instead of this machine's other address.
"""

from __future__ import annotations

import os

import pytest

from helpers import LOOPBACK_RAY_ENV

for _k, _v in LOOPBACK_RAY_ENV.items():
    os.environ.setdefault(_k, _v)
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

try:  # property tests (tests/test_properties_*.py): examples per test by profile
    from hypothesis import HealthCheck, settings

    _SLOW_SETUP = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
    # "ci" (default, and in CI): 30 examples per property, the same ones on every run (derandomize:
    # a clean clone's CI cannot turn red by the luck of a draw); "mid": 300 and "long": 2000 random
    # ones, which look further (README, Tests)
    for _name, _n in (("ci", 30), ("mid", 300), ("long", 2000)):
        settings.register_profile(_name, max_examples=_n, deadline=None, suppress_health_check=_SLOW_SETUP,
                                  print_blob=True, derandomize=_name == "ci")
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; only the property tests need it
    pass
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def moto_server():
    """An S3 API on 127.0.0.1 (moto's server mode, a test extra), for the whole session.

    Yields the environment a client needs (the standard AWS variables); the server stops at the
    end of the session. Traffic stays on loopback.
    """
    import subprocess
    import time
    import urllib.request

    import importlib.util
    import sys

    # the moto installed with this interpreter, not whichever moto_server comes first on PATH
    # (another Python's older moto answers pyarrow 26's CompleteMultipartUpload with an error)
    if importlib.util.find_spec("moto.server") is None:
        pytest.fail("moto's server mode not found: install the test extra (pip install -e '.[test]')")
    from helpers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    yield env
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def s3_bucket(moto_server, monkeypatch):
    """A fresh, empty bucket on the session's moto server, with the AWS variables set for this
    test (and for subprocesses and Ray workers it starts); yields ``s3://<bucket>``."""
    import secrets

    import boto3

    for k, v in moto_server.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    name = f"rf-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=moto_server["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=name)
    yield f"s3://{name}"
