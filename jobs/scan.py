"""Island scan on a Ray cluster: the same options as ``rayflavor scan``.

    ray job submit --address http://<head>:8265 --working-dir . -- \
        python jobs/scan.py --islands 256 --time-limit 6h --seed 1 --out /mnt/results/scan

``--out`` must be a path every node can write (a shared volume: EFS/NFS on the cluster
launcher, a ReadWriteMany PVC on KubeRay); models.parquet is written there after the dedupe.
The live view is off (job logs are not a terminal); progress lines are printed instead.
"""

from _entry import run

if __name__ == "__main__":
    run(["scan", "--no-live"])
