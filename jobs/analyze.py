"""Figures and summaries of a scan or diffusion run: the same options as ``rayflavor analyze``.

    ray job submit --address http://<head>:8265 --working-dir . -- \
        python jobs/analyze.py /mnt/results/scan --html
"""

from _entry import run

if __name__ == "__main__":
    run(["analyze"])
