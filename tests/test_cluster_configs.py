"""cluster/ and jobs/: every file parses, required fields are present, images, Ray versions and
entrypoints agree with the package, and the job scripts take exactly the CLI's options."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import yaml

import rayflavor
from rayflavor.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster"
VERSION = rayflavor.__version__
IMAGE = f"rayflavor:{VERSION}"
WORKDIR = "/home/ray/rayflavor"


def _load(name):
    return yaml.safe_load((CLUSTER / name).read_text())


def _images(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("image", "head_image", "worker_image") and isinstance(v, str):
                yield v
            else:
                yield from _images(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _images(v)


def test_every_yaml_parses():
    files = sorted(CLUSTER.glob("**/*.yaml"))
    assert {f.name for f in files} >= {"aws.yaml", "raycluster.yaml", "rayjob-scan.yaml"}
    for f in files:
        assert yaml.safe_load(f.read_text()), f


def test_dockerfile_matches_ray_and_layout():
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"FROM rayproject/ray:([\d.]+)-py311", text)
    assert base and base.group(1) == ray.__version__  # the client that submits must match the cluster
    assert f"WORKDIR {WORKDIR}" in text and "torch==2.13.0" in text and "RAY_AUTH_MODE=token" in text


def test_cluster_launcher_config():
    c = _load("aws.yaml")
    for key in ("cluster_name", "max_workers", "provider", "available_node_types", "head_node_type",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in c, key
    types = c["available_node_types"]
    assert c["head_node_type"] in types and {"cpu_workers", "gpu_workers"} <= set(types)
    assert sum(t.get("max_workers", 0) for t in types.values()) <= c["max_workers"]
    for t in types.values():
        assert t.get("min_workers", 0) <= t.get("max_workers", 0) or "max_workers" not in t
        assert "InstanceType" in t["node_config"]
    assert types["gpu_workers"]["node_config"]["InstanceType"].startswith(("g", "p"))
    assert all(img in (IMAGE, f"{IMAGE}-gpu") for img in _images(c))
    assert all("RAY_AUTH_MODE=token" in cmd for cmd in c["head_start_ray_commands"] + c["worker_start_ray_commands"]
               if cmd.strip().endswith(("--autoscaling-config=~/ray_bootstrap_config.yaml", ":6379")))


@pytest.mark.parametrize("name, kind", [("kuberay/raycluster.yaml", "RayCluster"), ("kuberay/rayjob-scan.yaml", "RayJob")])
def test_kuberay_manifests(name, kind):
    m = _load(name)
    assert m["apiVersion"] == "ray.io/v1" and m["kind"] == kind and m["metadata"]["name"]
    spec = m["spec"] if kind == "RayCluster" else m["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__
    assert "headGroupSpec" in spec and spec["workerGroupSpecs"]
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["maxReplicas"]
    assert set(_images(m)) <= {IMAGE, f"{IMAGE}-gpu"}
    envs = [e for c in spec["headGroupSpec"]["template"]["spec"]["containers"] for e in c.get("env", [])]
    assert {"name": "RAY_AUTH_MODE", "value": "token"} in envs


def test_rayjob_entrypoint_runs_a_job_script_with_valid_scan_options():
    m = _load("kuberay/rayjob-scan.yaml")
    argv = shlex.split(m["spec"]["entrypoint"])
    assert argv[0] == "python" and argv[1] == f"{WORKDIR}/jobs/scan.py"
    assert (ROOT / "jobs" / "scan.py").is_file()
    scan = cli.commands["scan"]
    ctx = scan.make_context("scan", argv[2:], resilient_parsing=False)  # raises on an unknown option
    assert ctx.params["islands"] == 256 and str(ctx.params["out"]) == "/mnt/results/scan"


@pytest.mark.parametrize("script, command", [("scan.py", "scan"), ("diffusion.py", "diffusion run"), ("analyze.py", "analyze")])
def test_job_scripts_share_the_cli(script, command):
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / script), "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    group = cli
    for word in command.split():
        group = group.commands[word]
    first_help_line = group.help.strip().splitlines()[0]
    assert first_help_line in out.stdout.replace("\n  ", " ")
