"""rayflavor: distributed AI scans of flavour model space on Ray.

Layers (each importable alone; lower layers never import higher ones):

* :mod:`rayflavor.physics`       pure numpy (+ numba kernels): models, observables, data, losses
* :mod:`rayflavor.methods`       torch diffusion model, pymoo NSGA-III problem and islands
* :mod:`rayflavor.orchestration` the only place that imports ray
* :mod:`rayflavor.storage`       Parquet schemas and writers
* :mod:`rayflavor.analysis`      summaries and figures
* :mod:`rayflavor.cli`           thin click commands
"""

__version__ = "0.1.0"
