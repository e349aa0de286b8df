"""Storage defects found by hand probes: a dedupe that shrinks models.parquet without a word,
locks that block for ever, output paths that create, chmod or refuse what they should not."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rayflavor import examples
from rayflavor.cli.main import cli
from rayflavor.storage import lease as lease_mod
from rayflavor.bench.dedupe import synthetic_parts
from rayflavor.storage.dedupe import dedupe
from rayflavor.storage.island_store import IslandStore, island_location
from rayflavor.storage.location import resolve

DATA = "nufit-6.0+pdg-2024"


def _rows(out: Path) -> int:
    return pq.read_metadata(out / "models.parquet").num_rows


@pytest.fixture
def ten(tmp_path):
    """A scan of one island with 10 unique rows in 2 parts, deduplicated once (models.parquet: 10 rows)."""
    out = tmp_path / "scan"
    synthetic_parts(str(out), 10, 1, rows_per_part=5, duplicate_fraction=0.0, seed=2)
    dedupe(str(out), DATA, compact=False)
    assert _rows(out) == 10
    return out


def _cli(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


# ------------------------------------------------------------------------------------ dedupe


def test_a_torn_checkpoint_does_not_replace_models_parquet_by_an_empty_one(ten):
    ck = island_location(resolve(ten), 0) / "checkpoint.json"
    ck.write_bytes(ck.read_bytes()[:40])  # torn
    res = _cli("dedupe", ten)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "checkpoint" in errors[0] and "10 rows" in errors[0], res.output
    assert _rows(ten) == 10  # kept


def test_a_shrink_no_damaged_part_explains_is_refused(ten):
    store = IslandStore(resolve(ten), 0)
    ck = store.read_checkpoint()
    ck["parts"] = ck["parts"][:1]  # a committed part dropped from the list by hand
    (store.dir / "checkpoint.json").write_bytes(json.dumps(ck).encode())
    res = _cli("dedupe", ten, "--no-compact")
    assert res.exit_code == 2 and "10 to 5 rows" in res.output, res.output
    assert _rows(ten) == 10


def test_a_shrink_by_a_damaged_part_is_published_with_a_warning_naming_it(ten):
    part = IslandStore(resolve(ten), 0).committed_parts()[1]
    part.write_bytes(b"not parquet")
    res = _cli("dedupe", ten, "--no-compact")
    assert res.exit_code == 0, res.output
    assert _rows(ten) == 5
    assert any(line.startswith("warning:") and "10 to 5 rows" in line and "damaged" in line
               for line in res.output.splitlines()), res.output


def test_a_part_listed_twice_is_counted_once(ten):
    store = IslandStore(resolve(ten), 0)
    ck = store.read_checkpoint()
    ck["parts"].append(dict(ck["parts"][0]))
    (store.dir / "checkpoint.json").write_bytes(json.dumps(ck).encode())
    warned = []
    c = dedupe(str(ten), DATA, compact=False, warn=warned.append)
    assert (c.found, c.unique, c.duplicates, c.parts) == (10, 10, 0, 2)
    assert any("listed twice" in w for w in warned), warned


def test_row_counts_of_the_checkpoint_are_checked_against_the_part(ten):
    store = IslandStore(resolve(ten), 0)
    ck = store.read_checkpoint()
    ck["parts"][1]["rows"] = 7  # the object there is not the committed one
    (store.dir / "checkpoint.json").write_bytes(json.dumps(ck).encode())
    warned = []
    c = dedupe(str(ten), DATA, compact=False, warn=warned.append)
    assert c.damaged == 1 and c.found == 5
    assert any("5 rows" in w and "lists 7" in w for w in warned), warned


@pytest.mark.parametrize("entry", [{"name": "../../../etc/passwd", "rows": 1}, "part-000000-x.parquet", {"rows": 3},
                                   {"name": "checkpoint.json", "rows": 1}])
def test_a_checkpoint_with_bad_part_entries_is_unreadable_not_a_traceback(tmp_path, entry):
    out = tmp_path / "scan"
    synthetic_parts(str(out), 4, 1, rows_per_part=4, duplicate_fraction=0.0, seed=2)
    store = IslandStore(resolve(out), 0)
    ck = store.read_checkpoint()
    ck["parts"].append(entry)
    (store.dir / "checkpoint.json").write_bytes(json.dumps(ck).encode())
    res = _cli("dedupe", out)
    assert res.exit_code == 0 and "not a valid island checkpoint" in res.output, res.output


def test_a_part_with_a_huge_charge_is_quarantined_not_fatal(ten):
    store = IslandStore(resolve(ten), 0)
    t = store.committed_parts()[1].read_parquet()
    q = t.column("q_Q1").to_numpy().copy()
    q[0] = 2**62
    t = t.set_column(t.schema.get_field_index("q_Q1"), "q_Q1", pa.array(q))
    store.commit(t, {}, {}, {})  # a committed part of legal schema and absurd values
    warned = []
    c = dedupe(str(ten), DATA, warn=warned.append)
    assert c.damaged == 1 and c.found == 10 and c.unique == 10, warned
    assert any("q_Q1" in w or "charge" in w for w in warned), warned
    assert [q["name"] for q in IslandStore(resolve(ten), 0).quarantined()]  # moved to the quarantine list
    assert dedupe(str(ten), DATA).found == 10


# ------------------------------------------------------------------------------------ locks


@pytest.mark.parametrize("content", [b"", b"garbage{", b"[1, 2]", b'{"expires_at": "soon"}'])
def test_an_unreadable_lock_older_than_the_grace_period_is_taken_over_and_logged(tmp_path, content, caplog):
    loc = resolve(tmp_path / "scan")
    (tmp_path / "scan").mkdir()
    lock = tmp_path / "scan" / "LOCK.json"
    lock.write_bytes(content)
    old = time.time() - 2 * lease_mod.UNREADABLE_GRACE
    os.utime(lock, (old, old))
    with caplog.at_level(logging.WARNING, logger="rayflavor.storage.lease"):
        held = lease_mod.acquire(loc, owner="test")
    assert json.loads(lock.read_text())["token"] == held.token
    assert any("took over" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    held.release()


def test_a_fresh_unreadable_lock_is_respected_with_a_clear_message(tmp_path):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "LOCK.json").write_bytes(b"")
    with pytest.raises(lease_mod.LeaseHeld) as err:
        lease_mod.acquire(resolve(tmp_path / "scan"), owner="test")
    assert "?" not in str(err.value) and "being written" in str(err.value)


@pytest.mark.parametrize("expires", [1e300, -1e300, 2**70])
def test_an_absurd_expiry_is_not_a_traceback(tmp_path, expires):
    (tmp_path / "scan").mkdir()
    lock = tmp_path / "scan" / "LOCK.json"
    lock.write_text(json.dumps({"owner": "x", "host": "elsewhere", "pid": 5, "token": "t",
                                "acquired_at": 0, "expires_at": expires}))
    old = time.time() - 2 * lease_mod.UNREADABLE_GRACE
    os.utime(lock, (old, old))
    held = lease_mod.acquire(resolve(tmp_path / "scan"), owner="test")  # no lease lasts for ever
    held.release()


def test_a_lease_held_message_never_raises_and_never_prints_question_marks():
    text = lease_mod._describe({"expires_at": 1e300, "pid": "x"})
    assert "?" not in text and "pid" not in text


# ------------------------------------------------------------------------------------ output paths


def _evaluate(tmp: Path, out) -> "CliRunner":
    return _cli("evaluate", "--model", "fn", examples.path("fn"), "-o", out)


def test_output_through_a_dangling_link_does_not_create_the_targets_parents(tmp_path):
    os.symlink(tmp_path / "nowhere" / "deeper" / "o.parquet", tmp_path / "link.parquet")
    res = _evaluate(tmp_path, tmp_path / "link.parquet")
    assert res.exit_code == 2 and "does not exist" in res.output, res.output
    assert not (tmp_path / "nowhere").exists()


def test_output_through_a_dangling_link_into_an_existing_directory_is_written(tmp_path):
    os.symlink(tmp_path / "target.parquet", tmp_path / "link.parquet")
    res = _evaluate(tmp_path, tmp_path / "link.parquet")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "link.parquet").is_symlink() and pq.read_metadata(tmp_path / "target.parquet").num_rows > 0


def test_replacing_a_private_file_keeps_its_mode(tmp_path):
    out = tmp_path / "o.parquet"
    out.write_bytes(b"old")
    os.chmod(out, 0o600)
    old = os.umask(0o022)
    try:
        res = _evaluate(tmp_path, out)
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_legal_long_name_is_written(tmp_path):
    out = tmp_path / ("x" * 240 + ".parquet")  # 248 characters: legal (NAME_MAX 255)
    res = _evaluate(tmp_path, out)
    assert res.exit_code == 0, res.output
    assert pq.read_metadata(out).num_rows > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left


def test_location_writes_keep_the_mode_and_take_long_names(tmp_path):
    loc = resolve(tmp_path) / ("y" * 250)
    loc.write_bytes(b"1")
    os.chmod(loc.local_path(), 0o600)
    loc.write_bytes(b"2")
    assert stat.S_IMODE(loc.local_path().stat().st_mode) == 0o600 and loc.read_bytes() == b"2"


@pytest.mark.parametrize("rows", ["", -1, True, 2.5])
def test_a_bad_row_count_in_a_checkpoint_leaves_the_part_to_be_read(ten, rows):
    """Found by the property test: rows '' made the island's checkpoint unreadable, so its
    committed rows were left out of a first models.parquet."""
    store = IslandStore(resolve(ten), 0)
    ck = store.read_checkpoint()
    ck["parts"][0]["rows"] = rows
    (store.dir / "checkpoint.json").write_bytes(json.dumps(ck).encode())
    (ten / "models.parquet").unlink()
    c = dedupe(str(ten), DATA, compact=False, warn=lambda m: None)
    assert (c.found, c.damaged) == (10, 0)
