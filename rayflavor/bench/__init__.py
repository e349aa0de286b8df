"""Benchmarks: every ``rayflavor bench ...`` measurement, one module per bench.

The package sits above orchestration (it may import every layer but the CLI; docs/architecture.md),
so a benchmark can drive Ray, the storage and the methods directly while the click commands stay
thin.  Speed and memory targets live here, never in the unit tests.

- :mod:`.physics`    models/s per core of the exact physics back ends (``bench physics``)
- :mod:`.scan`       islands on Ray: fast against paper, restarts, tabu, and the driver on a fake
                     multi-node cluster (``bench scan|restarts|tabu|cluster``)
- :mod:`.dedupe`     synthetic scans of any size and the dedupe timed on them (``bench cluster``)
- :mod:`.diffusion`  the network's forward pass and the samplers against the matmul bound (``bench diffusion``)
- :mod:`.seeds`      finished diffusion runs, one per seed, against a reference (``bench diffusion-seeds``)
- :mod:`.findings`   the FN paper's findings as scan recipes, measured (``bench findings``)
"""
