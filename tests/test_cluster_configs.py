"""cluster/ and jobs/: every file parses, required fields are present, images, Ray versions and
entrypoints agree with the package, the job scripts take exactly the CLI's options, the default
manifests write results to object storage with credentials from the standard AWS variables, and
the shared-volume variants mount one ReadWriteMany claim on every pod."""

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


S3_MANIFESTS = ("kuberay/raycluster.yaml", "kuberay/rayjob-scan.yaml")
PVC_MANIFESTS = ("kuberay/raycluster-pvc.yaml", "kuberay/rayjob-scan-pvc.yaml")
AWS_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL")
MOUNT = "/mnt/results"


def _ray_spec(m):
    return m["spec"] if m["kind"] == "RayCluster" else m["spec"]["rayClusterSpec"]


def _pod_specs(m):
    """Pod specs of the head and of every worker group (not the RayJob's submitter)."""
    spec = _ray_spec(m)
    return [g["template"]["spec"] for g in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]]


def _out_arg(argv):
    assert argv.count("--out") == 1, argv
    return argv[argv.index("--out") + 1]


def test_every_yaml_parses():
    files = sorted(CLUSTER.glob("**/*.yaml"))
    assert {f.name for f in files} >= {"aws.yaml", "raycluster.yaml", "rayjob-scan.yaml", "raycluster-pvc.yaml",
                                       "rayjob-scan-pvc.yaml", "results-pvc.yaml"}
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


@pytest.mark.parametrize("name, kind", [("kuberay/raycluster.yaml", "RayCluster"), ("kuberay/rayjob-scan.yaml", "RayJob"),
                                        ("kuberay/raycluster-pvc.yaml", "RayCluster"),
                                        ("kuberay/rayjob-scan-pvc.yaml", "RayJob")])
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


@pytest.mark.parametrize("name, out", [("kuberay/rayjob-scan.yaml", "s3://rayflavor-results/scans/scan1"),
                                       ("kuberay/rayjob-scan-pvc.yaml", f"{MOUNT}/scans/scan1")])
def test_rayjob_entrypoint_runs_a_job_script_with_valid_scan_options(name, out):
    m = _load(name)
    argv = shlex.split(m["spec"]["entrypoint"])
    assert argv[0] == "python" and argv[1] == f"{WORKDIR}/jobs/scan.py"
    assert (ROOT / "jobs" / "scan.py").is_file()
    assert _out_arg(argv) == out
    scan = cli.commands["scan"]
    ctx = scan.make_context("scan", argv[2:], resilient_parsing=False)  # raises on an unknown option
    from rayflavor.cli import options

    assert options.given(ctx)["islands"] == 256 and str(ctx.params["out"]).endswith(out.split("://")[-1])


@pytest.mark.parametrize("name", S3_MANIFESTS)
def test_default_manifests_write_to_object_storage_with_standard_aws_variables(name):
    m = _load(name)
    if m["kind"] == "RayJob":
        assert _out_arg(shlex.split(m["spec"]["entrypoint"])).startswith("s3://")
    for pod in _pod_specs(m):
        assert "volumes" not in pod  # no shared volume: every node reads and writes the bucket
        for c in pod["containers"]:
            assert "volumeMounts" not in c
            env = {e["name"]: e for e in c["env"]}
            for name_ in AWS_SECRET_ENV:
                ref = env[name_]["valueFrom"]["secretKeyRef"]
                # the secret's keys are the standard variable names pyarrow and polars read
                assert ref["name"] == "rayflavor-s3" and ref["key"] == name_
                assert ref.get("optional", False) is (name_ == "AWS_ENDPOINT_URL")  # absent: AWS S3 itself


@pytest.mark.parametrize("name", PVC_MANIFESTS)
def test_shared_volume_variants_mount_one_read_write_many_claim_everywhere(name):
    claim = _load("kuberay/results-pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    m = _load(name)
    if m["kind"] == "RayJob":
        assert _out_arg(shlex.split(m["spec"]["entrypoint"])).startswith(f"{MOUNT}/")
    for pod in _pod_specs(m):
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            mounts = [v for v in c["volumeMounts"] if v["mountPath"] == MOUNT]
            assert len(mounts) == 1
            assert volumes[mounts[0]["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
            assert not any(e["name"].startswith("AWS_") for e in c["env"])


def test_cluster_launcher_defaults_to_s3_through_instance_profiles():
    c = _load("aws.yaml")
    opts = " ".join(c["docker"]["run_options"])
    assert MOUNT not in opts and not c["initialization_commands"]  # EFS is the commented option
    assert "-e AWS_REGION=" in opts
    for name, t in c["available_node_types"].items():
        if name != c["head_node_type"]:  # the head keeps Ray's default profile (EC2 + S3)
            arn = t["node_config"]["IamInstanceProfile"]["Arn"]
            assert arn.startswith("arn:aws:iam::") and ":instance-profile/" in arn
    text = (CLUSTER / "aws.yaml").read_text()
    assert "--out s3://" in text and "# - -v /mnt/results:/mnt/results" in text


@pytest.mark.parametrize("script", ["scan.py", "diffusion.py", "analyze.py"])
def test_job_script_docstrings_show_an_object_storage_example(script):
    text = (ROOT / "jobs" / script).read_text()
    doc = text.split('"""')[1]
    assert "ray job submit" in doc and "s3://" in doc


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


def test_make_figures_help():
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / "make_figures.py"), "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--skip-diffusion" in out.stdout and "--work" in out.stdout


def test_readme_figures_are_committed_and_made_by_the_script():
    shown = re.findall(r"\(docs/img/([\w.-]+\.png)\)", (ROOT / "README.md").read_text())
    assert len(shown) >= 2  # one worked example per method
    script = (ROOT / "jobs" / "make_figures.py").read_text()
    for name in shown:
        assert (ROOT / "docs" / "img" / name).is_file(), name
        assert f'"{name}"' in script, name  # made by jobs/make_figures.py, not by hand
