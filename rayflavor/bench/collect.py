"""The baseline of the ``collect_solutions`` memory benchmark (``jobs/bench_collect.py``).

:func:`collect_in_memory` is the collection as it was before it streamed: every part's solution
rows concatenated in the driver, then deduplicated. The benchmark measures it against the streamed
:func:`rayflavor.orchestration.diffusion_sample.collect_solutions`, and
``tests/test_diffusion_collect.py`` checks that both write the same table.
"""

from __future__ import annotations

import pyarrow as pa

from rayflavor.methods.diffusion.data import unique_points
from rayflavor.methods.diffusion.sampleset import flat_manifest
from rayflavor.methods.diffusion.settings import KIND_FIELDS
from rayflavor.storage import runs


def collect_in_memory(run) -> pa.Table | None:
    """Every solution row of ``run``'s sample sets, in memory, concatenated and deduplicated
    (``None`` when the run has no sample part)."""
    root = runs.loc(run) / "samples"
    tables = []
    for name in root.list():
        d = root / name
        manifest = flat_manifest(runs.read_json(d / "manifest.json")) if (d / "manifest.json").is_file() else {}
        for i in runs.finished_parts(d):
            t = runs.read_table(runs.part_path(d, i), filters=[("solution", "==", True)]).replace_schema_metadata(None)
            if manifest.get("ordering") and "ordering" not in t.column_names:
                t = t.append_column("ordering", pa.array([manifest["ordering"]] * t.num_rows, pa.string()))
            for column, setting in KIND_FIELDS.items() if manifest else ():
                if column not in t.column_names:
                    t = t.append_column(column, pa.array([manifest.get(setting, 0)] * t.num_rows, pa.int32()))
            if t.num_rows or not tables:
                tables.append(t.append_column("sample_set", pa.array([name] * t.num_rows, pa.string())))
    return unique_points(pa.concat_tables(tables, promote_options="default")) if tables else None
