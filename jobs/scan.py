"""Island scan on a Ray cluster: the same options as ``rayflavor scan``.

    ray job submit --address http://<head>:8265 -- \
        python /home/ray/rayflavor/jobs/scan.py --islands 256 --time-limit 6h --seed 1 --out s3://<bucket>/scans/scan1

``--out`` is where every node writes: an object-storage URI (``s3://…``, ``gs://…``; credentials from
the standard variables such as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION, or the node's
instance profile) or a path on a volume every node mounts (EFS/NFS, a ReadWriteMany PVC).
models.parquet is written there after the dedupe. ``--config FILE.toml`` and ``--preset paper`` work
as in the CLI (``--config`` may be a stored scan.json). Job logs are not a terminal, so the live
view prints a plain progress line every 10 s instead of redrawing a table (``--no-live`` would leave
only the final table). The cluster guide: docs/cluster.md.
"""

from _entry import run

if __name__ == "__main__":
    run(["scan"])
