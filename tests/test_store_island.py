"""IslandStore on a local directory: commit protocol, replay after a kill, strays, plain-data state."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rayflavor.storage.island_store import (CHECKPOINT, FLUSH_ROWS, FLUSH_SECONDS, IslandStore, committed_parts,
                                            island_location)
from rayflavor.storage.location import StorageError, resolve

GENERATIONS = 12


def toy_run(out: str, until: int, kill_at_commit: int | None = None) -> None:
    """A deterministic toy island: generation g proposes 6 ids from 0..39; the new ones (not in
    the seen set, which is part of the state) are its models.  Commits after every generation.
    ``kill_at_commit``: SIGKILL this process after that commit's part and state are written,
    before its checkpoint (the window the protocol must survive)."""
    store = IslandStore(resolve(out), 0)
    if kill_at_commit is not None:
        real = store._write_checkpoint

        def write_checkpoint(ck):
            if ck["commit"] == kill_at_commit:
                os.kill(os.getpid(), signal.SIGKILL)
            real(ck)

        store._write_checkpoint = write_checkpoint
    loaded = store.load()
    if loaded is None:
        gen, seen = 0, np.empty(0, dtype=np.int64)
    else:
        meta, arrays, info = loaded
        gen, seen = meta["generation"], arrays["seen"]
        assert info["starts"] >= 1
    starts = 1 if loaded is None else loaded[2]["starts"] + 1
    while gen < until:
        ids = np.random.default_rng([7, gen]).integers(0, 40, 6)
        new = np.array([i for i in dict.fromkeys(ids.tolist()) if i not in set(seen.tolist())], dtype=np.int64)
        seen = np.concatenate([seen, new])
        gen += 1
        table = pa.table({"id": new, "generation": np.full(len(new), gen)}) if len(new) else None
        store.commit(table, {"generation": gen}, {"seen": seen}, {"starts": starts})


def _rows(out) -> list[tuple[int, int]]:
    tables = [p.read_parquet() for p in committed_parts(resolve(out))]
    if not tables:
        return []
    t = pa.concat_tables(tables)
    return list(zip(t["id"].to_pylist(), t["generation"].to_pylist()))


def _child(out: Path, until: int, kill_at: int | None) -> int:
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from test_store_island import toy_run; toy_run(*sys.argv[1:2], int(sys.argv[2]), {kill_at!r})"
    return subprocess.run([sys.executable, "-c", code, str(out), str(until)], env={**os.environ}).returncode


@pytest.mark.parametrize("kill_at", [1, 4])
def test_kill_between_part_and_checkpoint_replays_without_loss_or_duplicates(tmp_path, kill_at):
    ref = tmp_path / "ref"
    toy_run(str(ref), GENERATIONS)
    expected = _rows(ref)
    assert len(expected) > 10 and len({i for i, _ in expected}) == len(expected)

    out = tmp_path / "killed"
    assert _child(out, GENERATIONS, kill_at) == -signal.SIGKILL
    d = island_location(resolve(out), 0).local_path()
    names = sorted(p.name for p in d.iterdir())
    ck = json.loads((d / CHECKPOINT).read_text()) if (d / CHECKPOINT).exists() else {"parts": [], "state": None}
    referenced = {p["name"] for p in ck["parts"]} | ({ck["state"]["arrays"]} if ck["state"] else set())
    strays = [n for n in names if n.startswith(("part-", "state-")) and n not in referenced]
    assert strays, "the killed attempt left its uncommitted part/state behind (the case under test)"
    assert _rows(out) == expected[:len(_rows(out))]  # readers see only committed rows, a prefix
    assert _child(out, GENERATIONS, None) == 0  # the next attempt replays from the checkpoint
    assert _rows(out) == expected  # nothing lost, nothing twice, same order
    assert not set(strays) & {p.name for p in d.iterdir()}  # load() collected the dead attempt's objects


def test_stray_part_of_a_dead_attempt_is_never_read(tmp_path):
    out = resolve(tmp_path)
    s = IslandStore(out, 3)
    s.commit(pa.table({"id": [1, 2]}), {"g": 1}, {"seen": np.array([1, 2])}, {})
    stray = island_location(out, 3) / "part-000001-deadbeef.parquet"  # same seq, another attempt
    stray.write_parquet(pa.table({"id": [99]}))
    assert [p.name for p in IslandStore(out, 3).committed_parts()] == [s.committed_part_names()[0]]
    assert [p.name for p in committed_parts(out)] == [s.committed_part_names()[0]]
    assert stray.exists()
    s2 = IslandStore(out, 3)
    meta, arrays, _ = s2.load()
    assert meta == {"g": 1} and arrays["seen"].tolist() == [1, 2]
    assert not stray.exists()  # garbage-collected by the next attempt
    s2.commit(pa.table({"id": [3]}), {"g": 2}, {"seen": np.array([1, 2, 3])}, {})
    assert sum(p.read_parquet().num_rows for p in committed_parts(out)) == 3
    assert len({p.name for p in committed_parts(out)}) == 2


def test_checkpoint_round_trip_with_arrays_and_plain_data_only(tmp_path):
    out = resolve(tmp_path)
    arrays = {"pop": np.random.default_rng(0).normal(size=(7, 5)), "seen": np.arange(36, dtype=np.int64).reshape(2, 18),
              "flags": np.array([True, False]), "rng": np.array([2**64 - 1, 5], dtype=np.uint64), "empty": np.empty((0, 18))}
    meta = {"counters": {"generation": 4, "stop_reason": None, "best": 0.25}, "seed": 11, "name": "x"}
    s = IslandStore(out, 0)
    assert s.load() is None and s.committed_parts() == []
    s.commit(None, meta, arrays, {"wall_seconds": 1.5, "starts": [{"node_ip": "127.0.0.1"}]})
    got_meta, got, info = IslandStore(out, 0).load()
    assert got_meta == meta and info == {"wall_seconds": 1.5, "starts": [{"node_ip": "127.0.0.1"}]}
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v)
    d = island_location(out, 0).local_path()
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == [CHECKPOINT, json.loads((d / CHECKPOINT).read_text())["state"]["arrays"]]
    with pytest.raises(ValueError, match="not plain JSON data"):
        s.commit(None, {"x": float("nan")}, {}, {})
    with pytest.raises(ValueError, match="only plain numeric"):
        s.commit(None, {}, {"bad": np.array([{"a": 1}], dtype=object)}, {})
    assert IslandStore(out, 0).load()[0] == meta  # the refused commits wrote nothing
    s.commit(None, {"n": np.int64(3), "x": np.float32(0.5)}, {}, {"t": np.float64(2.0)})  # numpy scalars are plain numbers
    assert IslandStore(out, 0).load()[0] == {"n": 3, "x": 0.5}


def test_a_pickled_state_object_is_refused_not_executed(tmp_path):
    out = resolve(tmp_path)
    s = IslandStore(out, 0)
    s.commit(None, {}, {"a": np.zeros(2)}, {})
    ck = json.loads((island_location(out, 0) / CHECKPOINT).read_bytes())
    buf = io.BytesIO()
    np.savez(buf, a=np.array([print], dtype=object))  # an object array: pickled inside the npz
    (island_location(out, 0) / ck["state"]["arrays"]).write_bytes(buf.getvalue())
    with pytest.raises(StorageError, match="unreadable island state"):
        IslandStore(out, 0).load()
    (island_location(out, 0) / CHECKPOINT).write_bytes(b"{not json")
    with pytest.raises(StorageError, match="not a valid island checkpoint"):
        IslandStore(out, 0).load()


def test_compaction_replaces_parts_and_keeps_state(tmp_path):
    out = resolve(tmp_path)
    s = IslandStore(out, 0)
    for k in range(3):
        s.commit(pa.table({"id": [k]}), {"g": k}, {"seen": np.arange(k + 1)}, {"starts": 1})
    names = s.committed_part_names()
    c = IslandStore(out, 0)
    new = c.replace_parts(pa.table({"id": [0, 1]}), replaced=names[:2], quarantine={names[2]: "another schema"})
    assert IslandStore(out, 0).committed_part_names() == [new]
    assert IslandStore(out, 0).quarantined() == [{"name": names[2], "reason": "another schema"}]
    meta, arrays, info = IslandStore(out, 0).load()
    assert meta == {"g": 2} and arrays["seen"].tolist() == [0, 1, 2] and info == {"starts": 1}
    assert (island_location(out, 0) / names[2]).exists()  # quarantined parts are kept
    assert not (island_location(out, 0) / names[0]).exists()


def test_flush_defaults_leave_a_few_thousand_files_for_a_six_hour_64_island_scan():
    island_hours, rows = 64 * 6, 64 * 6 * 2e4
    parts = island_hours * 3600 / FLUSH_SECONDS + rows / FLUSH_ROWS
    assert 500 <= parts <= 5000
