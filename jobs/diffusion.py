"""The diffusion chain on a Ray cluster: dataset -> train -> sample -> fine-tune -> sample,
with the same options as ``rayflavor diffusion run``.

    ray job submit --address http://<head>:8265 --working-dir . -- \
        python jobs/diffusion.py /mnt/results/run1 --train-steps 100000 --rounds 1

RUN must be on a shared volume: training checkpoints, sample shards and solutions.parquet go there.
"""

from _entry import run

if __name__ == "__main__":
    run(["diffusion", "run"])
