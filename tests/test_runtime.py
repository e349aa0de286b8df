"""Which Ray a command joins: an explicit or RAY_ADDRESS address is joined, nothing else starts a
new embedded instance (never a cluster that `ray start` left on the machine)."""

from __future__ import annotations

import pytest

from rayflavor.orchestration import runtime


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(runtime.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(runtime.ray, "init", lambda **kw: seen.append(kw))
    monkeypatch.setattr(runtime, "check_reachable", lambda address, timeout=0: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return seen


@pytest.mark.parametrize("given, env, joined", [
    ("10.0.0.5:6379", None, "10.0.0.5:6379"),
    (None, "10.0.0.6:6379", "10.0.0.6:6379"),
    ("auto", None, "auto"),
    (None, None, "local"),
    (None, "local", "local"),
])
def test_the_address_decides(calls, monkeypatch, given, env, joined):
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    runtime.ensure_ray(given)
    assert len(calls) == 1 and calls[0]["address"] == joined
    if joined == "local":
        assert calls[0]["include_dashboard"] is False and calls[0]["num_cpus"] >= 1


def test_a_bad_address_is_one_line():
    with pytest.raises(runtime.RayAddressError, match="is not a Ray address"):
        runtime.ensure_ray("not an address")


def test_an_address_is_probed_once(calls, monkeypatch):
    probed = []
    monkeypatch.setattr(runtime, "check_reachable", lambda address, timeout=0: probed.append(address))
    runtime.ensure_ray("10.0.0.5:6379")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.6:6379")
    runtime.ensure_ray()
    assert probed == ["10.0.0.5:6379", "10.0.0.6:6379"]
