"""Figures and summaries of a scan or diffusion run: the same options as ``rayflavor analyze``.

    ray job submit --address http://<head>:8265 -- \
        python /home/ray/rayflavor/jobs/analyze.py s3://<bucket>/scans/scan1 --html

The same command runs on a laptop without Ray: ``rayflavor analyze s3://<bucket>/scans/scan1``
(credentials from the standard AWS / GCS variables).
"""

from _entry import run

if __name__ == "__main__":
    run(["analyze"])
