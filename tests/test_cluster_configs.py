"""cluster/ and jobs/: the configs a platform engineer takes to a real cluster.

Every ``ray.io/v1`` manifest validates against the CRD schemas of a pinned KubeRay release
(tests/data/kuberay/, unknown fields refused as ``kubectl apply`` does), token auth goes through
``authOptions``, pods fit the node types of docs/cluster.md with a memory /dev/shm, the GPU group
is steered to GPU nodes; the launcher YAML passes Ray's own ``prepare_config``/``validate_config``
and its one instance profile may pass itself to the workers; the image is set in one place
(``${RAYFLAVOR_IMAGE}``); one constraints file (cluster/constraints.txt) pins the versions of the
image, CI and the documented runtime_env, and its Ray is the manifests' (never compared with the Ray
installed here: a client of another version must not fail these tests); the job scripts take
exactly the CLI's options.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from rayflavor.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster"
CRDS = Path(__file__).resolve().parent / "data" / "kuberay"
GUIDE = ROOT / "docs" / "cluster.md"
WORKDIR = "/home/ray/rayflavor"
IMAGE_VAR = "${RAYFLAVOR_IMAGE}"
IMAGES = {IMAGE_VAR, f"{IMAGE_VAR}-gpu"}
SAMPLE_IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/rayflavor:0.1.0"
CONSTRAINTS = "cluster/constraints.txt"
RUNTIME_ENV = "cluster/runtime_env.yaml"
POLICY = "cluster/iam/rayflavor-node-policy.json"
PROFILE = "rayflavor-node"
AUTH_SECRET = "rayflavor-auth"


def _load(name, image=None):
    text = (CLUSTER / name).read_text()
    return yaml.safe_load(text.replace(IMAGE_VAR, image) if image else text)


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


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / CONSTRAINTS).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


RAY_VERSION = _pins()["ray"]

S3_MANIFESTS = ("kuberay/raycluster.yaml", "kuberay/rayjob-scan.yaml")
PVC_MANIFESTS = ("kuberay/raycluster-pvc.yaml", "kuberay/rayjob-scan-pvc.yaml")
MANIFESTS = S3_MANIFESTS + PVC_MANIFESTS
AWS_SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL")
MOUNT = "/mnt/results"


def _ray_spec(m):
    return m["spec"] if m["kind"] == "RayCluster" else m["spec"]["rayClusterSpec"]


def _groups(m):
    """(name, group) for the head and every worker group."""
    spec = _ray_spec(m)
    return [("head", spec["headGroupSpec"]), *[(g["groupName"], g) for g in spec["workerGroupSpecs"]]]


def _pod_specs(m):
    """Pod specs of the head and of every worker group (not the RayJob's submitter)."""
    return [g["template"]["spec"] for _, g in _groups(m)]


def _out_arg(argv):
    assert argv.count("--out") == 1, argv
    return argv[argv.index("--out") + 1]


# ------------------------------------------------------------------------------------ KubeRay CRDs
def _crd_schema(kind: str) -> dict:
    """openAPIV3Schema of the served storage version of KubeRay's CRD for ``kind``."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader: 1.4 MB of YAML in about a second
    crd = yaml.load((CRDS / f"ray.io_{kind.lower()}s.yaml").read_text(), Loader=loader)
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    assert version["name"] == "v1"
    return version["schema"]["openAPIV3Schema"]


def _strict(schema):
    """The schema as ``kubectl apply`` (strict field validation) reads it: x-kubernetes-* keys
    dropped, and an object that lists its properties refuses any other (a misspelt field is an
    error, not silently pruned) unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema and isinstance(schema["properties"], dict):
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


_VALIDATORS: dict = {}


def _validator(kind):
    if kind not in _VALIDATORS:
        _VALIDATORS[kind] = jsonschema.Draft7Validator(_strict(_crd_schema(kind)))
    return _VALIDATORS[kind]


def _crd_errors(m) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(m["kind"]).iter_errors(m)]


def test_every_yaml_parses():
    files = sorted(CLUSTER.glob("**/*.yaml"))
    assert {f.name for f in files} >= {"aws.yaml", "raycluster.yaml", "rayjob-scan.yaml", "raycluster-pvc.yaml",
                                       "rayjob-scan-pvc.yaml", "results-pvc.yaml", "runtime_env.yaml"}
    for f in files:
        assert yaml.safe_load(f.read_text()), f


def test_kuberay_crds_are_pinned_test_data_with_their_source():
    readme = (CRDS / "README.md").read_text()
    tag = re.search(r"release tag: `(v[\d.]+)`", readme).group(1)
    commit = re.search(r"commit: `([0-9a-f]{40})`", readme).group(1)
    assert tag == "v1.7.0" and commit and "Apache-2.0" in readme and "github.com/ray-project/kuberay" in readme
    for kind in ("RayCluster", "RayJob"):  # the pinned release has token auth with a secret of one's own
        auth = _crd_schema(kind)["properties"]["spec"]["properties"]
        auth = (auth if kind == "RayCluster" else auth["rayClusterSpec"]["properties"])["authOptions"]["properties"]
        assert auth["mode"]["enum"] == ["disabled", "token"] and auth["secretName"]["type"] == "string"


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifests_validate_against_the_kuberay_crds(name):
    m = _load(name, image=SAMPLE_IMAGE)
    assert m["apiVersion"] == "ray.io/v1" and m["kind"] in ("RayCluster", "RayJob")
    assert _crd_errors(m) == []


@pytest.mark.parametrize("mistake", ["misspelt field", "wrong type", "unknown auth mode", "missing container name"])
def test_crd_validation_refuses_the_usual_mistakes(mistake):
    m = _load("kuberay/rayjob-scan.yaml", image=SAMPLE_IMAGE)
    spec = _ray_spec(m)
    if mistake == "misspelt field":
        spec["authOption"] = spec.pop("authOptions")
    elif mistake == "wrong type":
        spec["workerGroupSpecs"][0]["maxReplicas"] = "sixteen"
    elif mistake == "unknown auth mode":
        spec["authOptions"]["mode"] = "password"
    else:
        del spec["headGroupSpec"]["template"]["spec"]["containers"][0]["name"]
    assert _crd_errors(m)


@pytest.mark.parametrize("name", MANIFESTS)
def test_token_auth_goes_through_auth_options(name):
    m = _load(name)
    spec = _ray_spec(m)
    # the operator puts RAY_AUTH_MODE and RAY_AUTH_TOKEN (key auth_token of the secret) into the Ray
    # containers, the autoscaler sidecar, the init containers and the RayJob's submitter
    assert spec["authOptions"] == {"mode": "token", "secretName": AUTH_SECRET}
    assert spec["rayVersion"] == RAY_VERSION
    assert "submitterPodTemplate" not in m["spec"]
    for pod in _pod_specs(m):
        for c in pod["containers"]:
            assert not {e["name"] for e in c.get("env", [])} & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}, c["name"]
    for line in (CLUSTER / name).read_text().splitlines():  # the secret's key is the operator's auth_token
        if f"secret generic {AUTH_SECRET}" in line:
            assert f"{AUTH_SECRET} --from-literal=auth_token=" in line


def test_guide_states_the_kuberay_release_with_token_auth():
    guide = GUIDE.read_text()
    assert "KubeRay ≥ 1.6.0" in guide and not re.search(r"KubeRay (≥|>=) ?1\.[0-5]\b", guide)
    assert f"{AUTH_SECRET} --from-literal=auth_token=" in guide and "authOptions" in guide


# --------------------------------------------------------------------------------- node types, pods
def _node_types() -> dict[str, dict]:
    """The node-type table of docs/cluster.md: instance -> vCPU, memory (GiB), GPUs."""
    rows = re.findall(r"^\| `([a-z0-9]+\.[a-z0-9]+)` \| (\d+) \| (\d+) \| (\d+)", GUIDE.read_text(), re.M)
    assert len(rows) >= 3
    return {r[0]: {"cpu": int(r[1]), "memory": int(r[2]), "gpu": int(r[3])} for r in rows}


def _cpu(q) -> float:
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _gib(q) -> float:
    q = str(q)
    units = {"Gi": 1, "Mi": 1 / 1024, "G": 1e9 / 2**30, "M": 1e6 / 2**30}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q) / 2**30


@pytest.mark.parametrize("name", MANIFESTS)
def test_pods_fit_the_documented_node_types_with_a_memory_dev_shm(name):
    types = _node_types()
    for group, g in _groups(_load(name)):
        pod = g["template"]["spec"]
        instance = pod["nodeSelector"]["node.kubernetes.io/instance-type"]
        node = types[instance]
        (c,) = pod["containers"]
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert req == lim, group  # Guaranteed QoS: what Ray counts is what the pod gets
        # one vCPU and a fifth of the memory stay free for the kubelet, the system and the daemon sets
        assert _cpu(req["cpu"]) <= node["cpu"] - 1, (group, instance)
        assert _gib(req["memory"]) <= 0.8 * node["memory"], (group, instance)
        gpus = int(req.get("nvidia.com/gpu", 0))
        assert gpus == node["gpu"], (group, instance)  # a GPU node is used for its GPU, a CPU node asks for none
        shm = [v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
        assert len(shm) == 1, group
        assert [m["mountPath"] for m in c["volumeMounts"] if m["name"] == shm[0]["name"]] == ["/dev/shm"], group
        tolerated = {t["key"] for t in pod.get("tolerations", [])}
        assert ("nvidia.com/gpu" in tolerated) == (gpus > 0), group
        if gpus:
            (t,) = pod["tolerations"]
            assert t == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            assert c["image"] == f"{IMAGE_VAR}-gpu"


def test_launcher_node_types_are_the_documented_ones():
    types = _node_types()
    c = _load("aws.yaml")
    for name, t in c["available_node_types"].items():
        instance = t["node_config"]["InstanceType"]
        assert instance in types, name
        assert (types[instance]["gpu"] > 0) == (name == "gpu_workers"), name


# ------------------------------------------------------------------------------------- the image
def test_every_config_names_the_one_image_variable():
    for f in sorted(CLUSTER.glob("**/*.yaml")):
        m = yaml.safe_load(f.read_text())
        found = set(_images(m))
        assert found <= IMAGES, (f.name, found)
        if f.name not in ("results-pvc.yaml", "runtime_env.yaml"):
            assert IMAGE_VAR in found, f.name
        # no image named without a registry, not even in a comment
        assert not re.search(r"(?<![/\w])rayflavor:0\.1\.0", f.read_text()), f.name
    guide = GUIDE.read_text()
    assert "export RAYFLAVOR_IMAGE=" in guide and "envsubst '$RAYFLAVOR_IMAGE'" in guide


@pytest.mark.parametrize("name", ["aws.yaml", *MANIFESTS])
def test_rendered_images_name_a_registry(name):
    for image in _images(_load(name, image=SAMPLE_IMAGE)):
        host = image.split("/")[0]
        assert "/" in image and ("." in host or ":" in host), image
        assert image in (SAMPLE_IMAGE, f"{SAMPLE_IMAGE}-gpu")


# ----------------------------------------------------------------------------- cluster launcher
def _prepared_launcher_config() -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_load("aws.yaml", image=SAMPLE_IMAGE))
    validate_config(config)
    return config


def test_launcher_config_passes_rays_own_validation():
    config = _prepared_launcher_config()
    assert config["head_node_type"] == "head" and {"cpu_workers", "gpu_workers"} <= set(config["available_node_types"])
    assert config["available_node_types"]["gpu_workers"]["docker"]["worker_image"] == f"{SAMPLE_IMAGE}-gpu"
    assert config["docker"]["pull_before_run"] is True


def test_launcher_validation_refuses_a_mistake():
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = _load("aws.yaml", image=SAMPLE_IMAGE)
    bad["docker"]["pull_before_runs"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))


def test_one_instance_profile_that_can_pass_itself_to_the_workers():
    c = _load("aws.yaml")
    profiles = {name: t["node_config"]["IamInstanceProfile"] for name, t in c["available_node_types"].items()}
    assert set(profiles) == set(c["available_node_types"])  # the head too: Ray's default head role cannot PassRole
    assert all(p == {"Name": PROFILE} for p in profiles.values()), profiles
    policy = json.loads((ROOT / POLICY).read_text())
    allowed = {}
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        for action in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
            allowed.setdefault(action, []).append(st)
    (pass_role,) = allowed["iam:PassRole"]
    assert pass_role["Resource"] == f"arn:aws:iam::*:role/{PROFILE}"
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == "ec2.amazonaws.com"
    # what Ray's AWS node provider calls from the head, and what every node needs for S3 and ECR
    for action in ("ec2:RunInstances", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:TerminateInstances",
                   "ec2:StopInstances", "ec2:StartInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeImages",
                   "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "ecr:GetAuthorizationToken",
                   "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert action in allowed, action
    trust = json.loads((CLUSTER / "iam" / "ec2-trust-policy.json").read_text())
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_guide_writes_out_the_iam_policy():
    guide = GUIDE.read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", guide, re.S)]
    assert json.loads((ROOT / POLICY).read_text()) in blocks
    assert POLICY in guide and f"--instance-profile-name {PROFILE}" in guide


def test_launcher_logs_into_ecr_before_pulling():
    c = _load("aws.yaml", image=SAMPLE_IMAGE)
    (login,) = [cmd for cmd in c["initialization_commands"] if "docker login" in cmd]
    # run it with the two tools replaced by shell functions that print their arguments: the
    # registry is the image's host part and the region its fourth label
    fakes = 'aws() { echo "aws $*"; echo secret; }; docker() { echo "docker $* <- $(cat | tr "\\n" " ")"; }; '
    out = subprocess.run(["bash", "-c", fakes + login], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["docker login --username AWS --password-stdin "
                                       "123456789012.dkr.ecr.eu-west-2.amazonaws.com <- aws ecr get-login-password "
                                       "--region eu-west-2 secret "], out.stdout
    # another registry: no ECR login
    other = login.replace(SAMPLE_IMAGE, "ghcr.io/you/rayflavor:0.1.0")
    out = subprocess.run(["bash", "-c", fakes + other], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout == "", out.stdout


def test_cluster_launcher_defaults_to_s3_through_instance_profiles():
    c = _load("aws.yaml")
    opts = " ".join(c["docker"]["run_options"])
    assert MOUNT not in opts and not any(MOUNT in cmd for cmd in c["initialization_commands"])  # EFS is commented
    assert "-e AWS_REGION=" in opts and "-e RAY_AUTH_MODE=token" in opts
    text = (CLUSTER / "aws.yaml").read_text()
    assert "--out s3://" in text and "# - -v /mnt/results:/mnt/results" in text
    assert all("RAY_AUTH_MODE=token" in cmd for cmd in c["head_start_ray_commands"] + c["worker_start_ray_commands"]
               if cmd.strip().endswith(("--autoscaling-config=~/ray_bootstrap_config.yaml", ":6379")))


# ----------------------------------------------------------------------------- one set of versions
def test_one_constraints_file_pins_the_ray_of_the_image_and_the_manifests():
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    for name in ("numpy", "numba", "pymoo", "polars", "pyarrow", "click", "matplotlib", "rich", "jsonschema"):
        assert name in pins, name
    base = re.search(r"^FROM rayproject/ray:([\d.]+)-py311-\$\{VARIANT\}$", (CLUSTER / "Dockerfile").read_text(), re.M)
    assert base and base.group(1) == RAY_VERSION
    for name in MANIFESTS:
        assert _ray_spec(_load(name))["rayVersion"] == RAY_VERSION, name
    guide = GUIDE.read_text()
    assert f"rayproject/ray:{RAY_VERSION}-py311" in guide and f'"ray[default]=={RAY_VERSION}"' in guide
    pyproject = (ROOT / "pyproject.toml").read_text()
    lower = re.search(r'"ray\[default,train\]>=([\d.]+)"', pyproject).group(1)
    assert tuple(map(int, lower.split("."))) <= tuple(map(int, RAY_VERSION.split(".")))


def test_dockerfile_ci_and_runtime_env_install_with_the_constraints():
    docker = (CLUSTER / "Dockerfile").read_text()
    assert f"COPY --chown=ray:users {CONSTRAINTS} /home/ray/constraints.txt" in docker
    installs = [ln for ln in docker.splitlines() if "pip install" in ln]
    assert len(installs) == 3 and all("-c /home/ray/constraints.txt" in ln for ln in installs)
    assert f"WORKDIR {WORKDIR}" in docker and "RAY_AUTH_MODE=token" in docker
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if "pip install" in ln]
    assert len(ci) == 2 and all(f"-c {CONSTRAINTS}" in ln for ln in ci), ci
    assert ci[0].endswith("torch==2.13.0")  # CI's disk holds the CPU wheel; no index beyond PyPI is reachable
    assert ci[1].endswith('-e ".[test]"')
    env = yaml.safe_load((ROOT / RUNTIME_ENV).read_text())
    from ray.runtime_env import RuntimeEnv

    RuntimeEnv(**env)  # Ray's own validation
    packages = env["pip"]["packages"]
    assert f"-c ${{RAY_RUNTIME_ENV_CREATE_WORKING_DIR}}/{CONSTRAINTS}" in packages
    # the CPU wheel from the CPU index only: no CUDA torch on the nodes
    assert "torch==2.13.0+cpu" in packages and "--extra-index-url https://download.pytorch.org/whl/cpu" in packages
    assert "${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}" in packages  # rayflavor and its dependencies, matplotlib too
    assert '"matplotlib' in (ROOT / "pyproject.toml").read_text()
    guide = GUIDE.read_text()
    assert f"--runtime-env {RUNTIME_ENV}" in guide and f"-c {CONSTRAINTS}" in guide
    assert "--runtime-env-json" not in guide and "--runtime-env-json" not in (ROOT / "jobs" / "_entry.py").read_text()


def test_dockerignore_keeps_the_build_context_to_what_the_image_needs():
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    for pattern in (".git", "**/__pycache__", "tests", "docs", ".venv"):
        assert pattern in ignored, pattern
    for needed in ("rayflavor", "jobs", "cluster", "pyproject.toml", "README.md"):
        assert needed not in ignored, needed


# ------------------------------------------------------------------------------ entrypoints, storage
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
        # no shared volume: every node reads and writes the bucket
        assert not any("persistentVolumeClaim" in v for v in pod.get("volumes", []))
        for c in pod["containers"]:
            assert not any(v["mountPath"] == MOUNT for v in c.get("volumeMounts", []))
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
            assert not any(e["name"].startswith("AWS_") for e in c.get("env", []))


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
