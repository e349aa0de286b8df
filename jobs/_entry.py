"""Shared entry for the job scripts: run one ``rayflavor`` CLI command in the job driver.

``ray job submit`` starts the script as the job's driver with ``RAY_ADDRESS`` set, so the
command joins the cluster instead of starting an embedded Ray; options are exactly the CLI's.

runtime_env: the cluster image (cluster/Dockerfile) has rayflavor installed. Submitting with
``--working-dir . --runtime-env cluster/runtime_env.yaml`` from a checkout also works on a plain
``rayproject/ray:2.60.0-py311`` image: every node installs the checkout with the versions of
cluster/constraints.txt and the CPU wheel of torch; the working directory puts this checkout's
``rayflavor/`` first on ``sys.path`` of the driver and of every worker.

Retries: a RayJob retry (``backoffLimit``) or a resubmission runs the entrypoint again with the
same options.  The commands run here in job mode: ``scan`` that finds a scan in ``--out`` continues
it when its stored settings are the requested ones (run-control settings such as ``--time-limit``
may differ; without ``--seed`` the stored seed is kept), waits out the lease of a dead predecessor,
and refuses other settings in one line; ``diffusion run`` resumes its RUN directory by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Running as `python jobs/<name>.py` from a checkout: make the checkout's package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(command: list[str], argv: list[str] | None = None) -> None:
    from rayflavor.cli.main import cli

    args = [*command, *(sys.argv[1:] if argv is None else argv)]
    name = f"jobs/{Path(sys.argv[0]).name}" if sys.argv and sys.argv[0] else "jobs"
    if not os.environ.get("RAY_ADDRESS") and "--help" not in args:
        print(f"{name}: RAY_ADDRESS is not set; running on an embedded local Ray", file=sys.stderr)
    cli.main(args=args, prog_name=name, obj={"job": True})
