"""Storage anywhere: one Location API over local disks and an S3 API (moto on 127.0.0.1),
the lease on a run directory, and settings files."""

from __future__ import annotations

import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from rayflavor import configfile
from rayflavor.storage import lease, location


# ---------------------------------------------------------------------------- Location


def _roundtrip(root: location.Location) -> None:
    d = root / "run" / "islands"
    assert not d.exists() and d.list() == []
    (d / "a.json").write_json({"x": [1, 2]})
    (d / "b.bin").write_bytes(b"\x00\x01")
    t = pa.table({"q": pa.array([1, 2, 3], pa.int64())})
    (d / "p.parquet").write_parquet(t)
    assert d.is_dir() and (d / "a.json").is_file()
    assert d.list() == ["a.json", "b.bin", "p.parquet"]
    assert (d / "a.json").read_json() == {"x": [1, 2]}
    assert (d / "b.bin").read_bytes() == b"\x00\x01"
    assert (d / "p.parquet").read_parquet().equals(t)
    assert (d / "p.parquet").parquet_schema().names == ["q"]
    (d / "b.bin").delete()
    (d / "b.bin").delete()  # absent: nothing
    assert d.list() == ["a.json", "p.parquet"]
    with pytest.raises(FileNotFoundError):
        (d / "b.bin").read_bytes()
    back = pickle.loads(pickle.dumps(d))  # Ray ships locations by URI
    assert back.uri == d.uri and back.list() == d.list()
    (root / "run").delete_tree()
    assert not (root / "run").exists()


def test_local_roundtrip_and_umask(tmp_path):
    root = location.resolve(tmp_path)
    _roundtrip(root)
    old = os.umask(0o022)
    try:
        (root / "f.json").write_json({})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.json").st_mode) == 0o644  # mkstemp would give 0600
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary left behind


def test_local_write_never_replaces_special_files(tmp_path):
    os.mkdir(tmp_path / "d")
    with pytest.raises(location.StorageError, match="not a regular file"):
        location.resolve(tmp_path / "d").write_bytes(b"x")
    assert (tmp_path / "d").is_dir()


def test_stale_temporary_of_a_dead_writer_is_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.json.tmp-{int(dead.stdout)}-abcd"
    stale.write_bytes(b"half")
    location.resolve(tmp_path / "out.json").write_json({"ok": True})
    assert not stale.exists() and json.loads((tmp_path / "out.json").read_text()) == {"ok": True}


def test_json_is_strict(tmp_path):
    loc = location.resolve(tmp_path / "m.json")
    with pytest.raises(ValueError):
        loc.write_json({"x": float("nan")})
    assert not loc.exists()
    (tmp_path / "m.json").write_text('{"x": NaN}')
    with pytest.raises(location.StorageError, match="not valid JSON"):
        loc.read_json()


@pytest.mark.parametrize("uri, fragment", [
    ("ftp://host/x", "unsupported URI scheme 'ftp'"),
    ("s3://", "no bucket"),
    ("", "empty path"),
])
def test_bad_uris_are_one_line(uri, fragment):
    with pytest.raises(location.StorageError, match=fragment) as exc:
        location.resolve(uri)
    assert "\n" not in str(exc.value)


def test_file_uri_is_local(tmp_path):
    loc = location.resolve(f"file://{tmp_path}")
    assert loc.is_local and loc.uri == str(tmp_path)


def test_s3_roundtrip_and_polars(s3_bucket):
    import polars as pl

    root = location.resolve(f"{s3_bucket}/prefix")
    assert not root.is_local and root.uri == f"{s3_bucket}/prefix"
    _roundtrip(root)
    (root / "t" / "p.parquet").write_parquet(pa.table({"a": [1.5, 2.5]}))
    assert pl.scan_parquet((root / "t" / "p.parquet").polars_source()).collect()["a"].to_list() == [1.5, 2.5]
    root.check_writable()


def test_s3_errors_are_one_line(s3_bucket, monkeypatch):
    with pytest.raises(location.StorageError, match="bucket does not exist"):
        location.resolve("s3://no-such-bucket-rf/x").check_writable()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(location.StorageError, match="cannot reach") as exc:
        location.resolve(f"{s3_bucket}/x").check_writable()
    assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------- lease

_HOLD = textwrap.dedent("""
    import sys, time
    from rayflavor.storage import lease, location
    l = lease.acquire(location.resolve(sys.argv[1]), owner="other scan", ttl=float(sys.argv[2]))
    print("held", flush=True)
    time.sleep(60)
""")


def _holder(uri: str, ttl: float = 60.0) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _HOLD, uri, str(ttl)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert p.stdout.readline().strip() == "held"
    return p


def test_lease_refuses_a_live_holder_and_takes_over_from_a_dead_one(tmp_path):
    loc = location.resolve(tmp_path)
    p = _holder(str(tmp_path))
    try:
        with pytest.raises(lease.LeaseHeld, match=rf"in use by other scan \(pid {p.pid}"):
            lease.acquire(loc, owner="me")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    with lease.acquire(loc, owner="me") as held:  # the holder is dead: taken over at once
        assert lease.read(loc)["owner"] == "me"
        held.renew()
    assert lease.read(loc) is None


def test_lease_on_object_storage_expires(s3_bucket):
    loc = location.resolve(f"{s3_bucket}/scan")
    first = lease.acquire(loc, owner="first", ttl=0.5, settle=0.0)
    doc = lease.read(loc)
    doc["host"] = "another-host"  # a holder elsewhere: only its expiry frees the lease
    (loc / lease.LOCK).write_json(doc)
    with pytest.raises(lease.LeaseHeld):
        lease.acquire(loc, owner="second", settle=0.0)
    import time

    time.sleep(0.6)
    second = lease.acquire(loc, owner="second", settle=0.0)
    with pytest.raises(lease.LeaseHeld, match="taken over"):
        first.renew()
    second.release()


# ---------------------------------------------------------------------------- settings files


@dataclass(frozen=True)
class _Inner:
    tol: float = 0.2
    order: str = "any"

    def __post_init__(self):
        if not 0 < self.tol < 1:
            raise ValueError(f"tol must lie in (0, 1), not {self.tol}")


@dataclass(frozen=True)
class _Outer:
    n: int = 4
    limit: float | None = None
    inner: _Inner = field(default_factory=_Inner)


def test_settings_roundtrip_through_a_manifest(tmp_path):
    s = configfile.replace_from(_Outer(), {"n": 7, "inner": {"tol": 0.1}})
    assert s == _Outer(n=7, inner=_Inner(tol=0.1))
    path = tmp_path / "scan.json"
    path.write_text(json.dumps({"format": "x", "settings": configfile.to_mapping(s), "status": "finished"}))
    assert configfile.from_mapping(_Outer, configfile.load_config(path)) == s
    toml = tmp_path / "c.toml"
    toml.write_text("n = 9\n[inner]\norder = 'IO'\n")
    assert configfile.from_mapping(_Outer, configfile.load_config(toml)) == _Outer(n=9, inner=_Inner(order="IO"))
    assert configfile.default(_Outer, "n") == 4 and configfile.default(_Outer, "inner") == _Inner()


@pytest.mark.parametrize("mapping, fragment", [
    ({"m": 1}, "unknown setting(s) m"),
    ({"n": "4"}, "n: expected an integer"),
    ({"n": True}, "n: expected an integer"),
    ({"limit": float("nan")}, "limit: must be a finite number"),
    ({"inner": {"tol": 2.0}}, "tol must lie in"),
    ({"inner": 3}, "inner: expected a table"),
])
def test_bad_settings_are_named(mapping, fragment):
    with pytest.raises(configfile.ConfigError) as exc:
        configfile.from_mapping(_Outer, mapping)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_bad_config_files(tmp_path):
    (tmp_path / "bad.toml").write_text("n = \n")
    with pytest.raises(configfile.ConfigError, match="not valid TOML"):
        configfile.load_config(tmp_path / "bad.toml")
    with pytest.raises(configfile.ConfigError, match="no such file"):
        configfile.load_config(tmp_path / "none.toml")
    (tmp_path / "nan.json").write_text('{"n": NaN}')
    with pytest.raises(configfile.ConfigError, match="not valid JSON"):
        configfile.load_config(tmp_path / "nan.json")
