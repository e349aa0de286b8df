"""Self-contained runs: one URI parser for every ``-o``/``--out``, and a scan that keeps its own
copy of its data set (content and SHA-256) in OUT and uses it on resume from any machine."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor import examples
from rayflavor.cli.diffusion import _run_dir
from rayflavor.cli.main import cli
from rayflavor.physics import data, fn
from rayflavor.storage import scan_data
from rayflavor.storage.island_store import committed_parts
from rayflavor.storage.location import StorageError, resolve, split_uri

RELAXED = Path(__file__).with_name("data_relaxed.toml")


# ---------------------------------------------------------------------------- one URI parser
def test_file_uris_follow_rfc_8089(tmp_path):
    p = str(tmp_path / "run")
    for form in (p, f"file://{p}", f"file://localhost{p}", f"FILE://LOCALHOST{p}"):
        assert resolve(form).uri == p and resolve(form).is_local, form
    assert split_uri("file:///tmp/a%20b") == ("", "/tmp/a b")
    with pytest.raises(StorageError, match="names host 'elsewhere'"):
        resolve("file://elsewhere/tmp/x")
    assert split_uri("s3://bucket/run/") == ("s3", "bucket/run") and split_uri("gcs://b/x") == ("gs", "b/x")


_segment = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_ ."),
                   min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=4))
def test_every_local_form_names_the_same_directory(parts):
    """A plain absolute path, file:///PATH and file://localhost/PATH are one location."""
    from urllib.parse import quote

    path = "/tmp/rf-uri/" + "/".join(parts)
    want = str(Path(path).resolve())
    for form in (path, "file://" + quote(path), "file://localhost" + quote(path)):
        assert split_uri(form) == ("", want), form


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.builds(lambda a, b: f"{a}://{b}", st.sampled_from(
    ["file", "FILE", "s3", "gs", "gcs", "ftp", ""]), st.text(max_size=30))))
def test_any_text_is_a_location_or_one_line_refusal(text):
    """Every string: a (scheme, path) pair or a one-line StorageError, never another exception."""
    try:
        scheme, path = split_uri(text)
    except StorageError as exc:
        assert "\n" not in str(exc).strip() or "\n" in text
        return
    assert scheme in ("", "s3", "gs") and path and (scheme or path.startswith("/"))


def test_run_dir_option_takes_the_same_forms(tmp_path):
    conv = _run_dir(False).convert
    assert conv(f"file://localhost{tmp_path}/run", None, None) == Path(f"{tmp_path}/run")
    assert conv(f"{tmp_path}/run", None, None) == Path(f"{tmp_path}/run")


def test_evaluate_writes_an_s3_object_not_a_local_directory(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"{s3_bucket}/results/fn.parquet"
    res = CliRunner().invoke(cli, ["evaluate", "--model", "fn", str(examples.path("fn")), "-o", uri])
    assert res.exit_code == 0 and uri in res.output, res.output
    assert not (tmp_path / "s3:").exists() and list(tmp_path.iterdir()) == []
    table = pq.read_table(resolve(uri).path, filesystem=resolve(uri).fs)
    assert "valid" in table.column_names and table.num_rows == pq.read_metadata(examples.path("fn")).num_rows
    res = CliRunner().invoke(cli, ["evaluate", "--model", "fn", str(examples.path("fn")), "-o", f"{s3_bucket}/results"])
    assert res.exit_code == 2 and "is a prefix" in res.output, res.output  # a "directory" is refused


def test_evaluate_file_localhost_uri_writes_the_path(tmp_path):
    target = tmp_path / "out.parquet"
    res = CliRunner().invoke(cli, ["evaluate", "--model", "fn", str(examples.path("fn")), "-o", f"file://localhost{target}"])
    assert res.exit_code == 0, res.output
    assert target.is_file() and not Path("/localhost").exists()


# ---------------------------------------------------------------------------- the data set's copy (no Ray)
def test_a_new_scan_copies_its_data_set_and_a_resume_uses_the_copy(tmp_path):
    src = tmp_path / "mine.toml"
    shutil.copy(RELAXED, src)
    out = resolve(tmp_path / "scan")
    ds, rec = scan_data.keep_copy(out, str(src))
    assert (out / "data.toml").read_bytes() == src.read_bytes()
    assert rec == {"name": "data.toml", "sha256": hashlib.sha256(src.read_bytes()).hexdigest(), "source": str(src)}
    (out / "scan.json").write_json({"data_file": rec})
    src.unlink()  # another machine: the driver's path does not exist there
    again, _ = scan_data.keep_copy(out, str(src))
    assert again.observables == ds.observables
    src.write_bytes(RELAXED.read_bytes().replace(b"format", b"# edited\nformat", 1))
    with pytest.raises(ValueError, match="changed since the scan started"):
        scan_data.keep_copy(out, str(src))
    assert scan_data.keep_copy(out, str(src), changed_ok=True)[0].observables == ds.observables  # the copy
    (out / "data.toml").write_bytes(src.read_bytes())  # the copy itself edited
    with pytest.raises(StorageError, match="was changed after the scan started"):
        scan_data.stored(out)


def test_a_shipped_data_set_is_copied_too(tmp_path):
    out = resolve(tmp_path / "scan")
    ds, rec = scan_data.keep_copy(out, fn.DEFAULT_DATA)
    assert rec["source"] == fn.DEFAULT_DATA and ds.observables == data.load(fn.DEFAULT_DATA).observables


# ---------------------------------------------------------------------------- the whole scan (Ray)
@pytest.mark.ray
def test_scan_resumes_from_its_copy_and_refuses_an_edited_data_file(ray_session, tmp_path):
    src = tmp_path / "laptop" / "mine.toml"
    src.parent.mkdir()
    shutil.copy(RELAXED, src)
    out = tmp_path / "scan"
    cfg = tmp_path / "quick.toml"
    cfg.write_text("[island]\nmass_tolerance = 0.9\ntarget_valid = 3\n")
    args = ["--config", str(cfg), "--no-live", "--out", str(out)]
    res = CliRunner().invoke(cli, ["scan", "--islands", "2", "--time-limit", "90s", "--seed", "2",
                                   "--data", str(src), *args])
    assert res.exit_code == 0, res.output
    doc = resolve(out / "scan.json").read_json()
    assert doc["data_file"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (out / "data.toml").read_bytes() == src.read_bytes()
    shutil.rmtree(src.parent)  # resume "on another machine": the original path is gone
    res = CliRunner().invoke(cli, ["scan", "--resume", "--out", str(out), "--no-live"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["dedupe", str(out)])
    assert res.exit_code == 0, res.output
    src.parent.mkdir()
    src.write_text(RELAXED.read_text().replace("format", "# edited\nformat", 1))
    res = CliRunner().invoke(cli, ["scan", "--resume", "--out", str(out), "--no-live"])
    assert res.exit_code == 2 and "changed since the scan started" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(cli, ["scan", "--resume=data-changed-ok", "--out", str(out), "--no-live"])
    assert res.exit_code == 0, res.output
    df = pl.read_parquet([p.uri for p in committed_parts(resolve(out))])
    x = df.select(list(fn.PARAMETERS)).to_numpy().astype(np.float64)
    assert fn.evaluate(x, data=data.load(str(out / "data.toml")), mass_tolerance=0.9)["valid"].all()
