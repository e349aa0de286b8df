"""The diffusion chain on a Ray cluster: dataset -> pre-network -> teacher (or fine-tuning rounds) -> final samples,
with the same options as ``rayflavor diffusion run``.

    ray job submit --address http://<head>:8265 -- \
        python /home/ray/rayflavor/jobs/diffusion.py s3://<bucket>/runs/run1 --seed 1

RUN is an object-storage URI (``s3://…``, ``gs://…``) or a path on a volume every node mounts:
training checkpoints, sample shards, networks and solutions.parquet go there, and a stopped chain
resumes from it. ``--preset paper`` gives the paper's chain; see ``rayflavor diffusion run --help``.
"""

from _entry import run

if __name__ == "__main__":
    run(["diffusion", "run"])
