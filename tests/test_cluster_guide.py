"""docs/cluster.md is a tested path: every command in its code blocks parses, every file it names
exists, and its cost/throughput table follows from the measurement and prices it states.

* ``rayflavor …`` parses against the real click CLI (through the CLI object, so the test follows
  the commands' options wherever they are declared);
* ``ray job submit … -- python SCRIPT ARGS`` parses against Ray's own CLI, SCRIPT exists in this
  checkout (``/home/ray/rayflavor/…`` is the image's copy of it) and ARGS parse with the CLI
  command the script runs (``jobs/_entry.run``);
* python and json blocks compile / load;
* every repository path (``cluster/…``, ``jobs/…``, ``docs/…``, links) exists.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import click
import pytest

from rayflavor.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "cluster.md"
IMAGE_ROOT = "/home/ray/rayflavor/"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^ *```{lang}\n(.*?)^ *```", GUIDE.read_text(), re.S | re.M)


def _commands() -> list[list[str]]:
    """Every simple command of the guide's bash blocks as argv: continuation lines joined, comments
    dropped, split at ``&&``, ``|``, ``;`` and ``&``; redirections and what follows them removed."""
    out = []
    for block in _blocks("bash"):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            argv: list[str] = []
            skip = False
            for tok in lexer:
                if tok in ("&&", "||", "|", ";", "&"):
                    if argv:
                        out.append(argv)
                    argv, skip = [], False
                elif tok in ("<", ">", ">>"):
                    skip = True  # the next word is a file, not an argument
                elif skip:
                    skip = False
                else:
                    argv.append(tok)
            if argv:
                out.append(argv)
    return out


def _parse(group: click.Group, prog: str, args: list[str]) -> click.Context:
    """Parse ``args`` down to the leaf command; click raises UsageError on an unknown command or
    option, a missing argument or a value of the wrong type."""
    ctx = group.make_context(prog, list(args), resilient_parsing=False)
    cmd: click.Command = group
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
        cmd = sub
    return ctx


def _script_command(script: Path) -> list[str]:
    """The CLI command a job script runs (``run(["diffusion", "run"])`` -> ``["diffusion", "run"]``)."""
    m = re.search(r"^\s*run\((\[[^\]]*\])\)", script.read_text(), re.M)
    assert m, f"{script} does not run a CLI command through jobs/_entry.run"
    return json.loads(m.group(1).replace("'", '"'))


def _local(path: str) -> Path:
    return ROOT / (path[len(IMAGE_ROOT):] if path.startswith(IMAGE_ROOT) else path)


COMMANDS = _commands()


def test_the_guide_has_the_commands_of_every_route():
    words = [" ".join(c[:3]) for c in COMMANDS]
    assert sum(w.startswith("rayflavor ") for w in words) >= 1
    assert sum(w.startswith("ray job submit") for w in words) >= 4
    for needed in ("ray up", "ray down", "kubectl apply", "envsubst", "docker build", "aws iam"):
        assert any(w.startswith(needed) for w in words), needed


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] == "rayflavor"], ids=" ".join)
def test_rayflavor_commands_parse(argv):
    _parse(cli, "rayflavor", argv[1:])


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[:3] == ["ray", "job", "submit"]], ids=" ".join)
def test_job_submissions_name_a_job_script_whose_arguments_parse(argv, monkeypatch):
    from ray.scripts.scripts import cli as ray_cli

    monkeypatch.chdir(ROOT)  # --working-dir . and --runtime-env FILE are read from a checkout
    _parse(ray_cli, "ray", argv[1:])  # Ray's own options
    entry = argv[argv.index("--") + 1:]
    assert entry[0] == "python" and entry[1].endswith(".py"), entry
    script = _local(entry[1])
    assert script.is_file() and script.parent == ROOT / "jobs", entry[1]
    if "--working-dir" not in argv:  # runs the image's copy, at the image's path
        assert entry[1].startswith(IMAGE_ROOT), entry[1]
    _parse(cli, "rayflavor", [*_script_command(script), *entry[2:]])


def test_job_script_paths_in_prose_exist():
    text = GUIDE.read_text()
    for brace in re.findall(r"jobs/\{([\w,]+)\}\.py", text):
        for name in brace.split(","):
            assert (ROOT / "jobs" / f"{name}.py").is_file(), name


def _named_paths() -> set[str]:
    text = GUIDE.read_text()
    paths = set(re.findall(r"(?<![\w./-])((?:cluster|jobs|docs|tests|rayflavor|\.ci)/[\w./-]*[\w/])", text))
    paths |= {p[len(IMAGE_ROOT):] for p in re.findall(rf"{re.escape(IMAGE_ROOT)}[\w./-]+\w", text)}
    paths |= set(re.findall(r"file://([\w./-]+\w)", text))  # aws CLI file arguments
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in link:
            paths.add(str((GUIDE.parent / link).resolve().relative_to(ROOT)))
    return paths


def test_every_file_the_guide_names_exists():
    paths = _named_paths()
    assert {"cluster/aws.yaml", "cluster/constraints.txt", "cluster/iam/ec2-trust-policy.json",
            "cluster/runtime_env.yaml",
            "cluster/iam/rayflavor-node-policy.json", "cluster/kuberay/rayjob-scan.yaml", "jobs/scan.py"} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []


def test_python_and_json_blocks_are_valid():
    for block in _blocks("python"):
        compile(block, "docs/cluster.md", "exec")
    assert _blocks("json")
    for block in _blocks("json"):
        json.loads(block)


# ---------------------------------------------------------------------------- cost and throughput
def _num(s: str) -> float:
    """The last number of a table cell ("8 × 1.428 + 0.192 = $11.62" -> 11.62; "89 824" -> 89824)."""
    found = re.findall(r"\d[\d ]*(?:\.\d+)?", s.replace("\u202f", " "))
    return float(found[-1].replace(" ", ""))


def test_cost_table_follows_from_the_stated_measurement_and_prices():
    text = GUIDE.read_text()
    section = text[text.index('<a id="cost"></a>'):text.index("## 5. On your laptop")]
    rate = _num(re.search(r"\*\*([\d ]+) distinct light textures", section).group(1))
    experiments = (ROOT / "docs" / "experiments.md").read_text()
    assert re.search(rf"distinct light textures per core-hour \| \*\*{int(rate) // 1000} {int(rate) % 1000:03d}\*\*",
                     experiments)  # the measured figure, as recorded
    worker = float(re.search(r"`c7i\.8xlarge` \$([\d.]+)/h", section).group(1))
    head = float(re.search(r"`m6i\.xlarge` \(head\) \$([\d.]+)/h", section).group(1))
    rows = [r for r in re.findall(r"^\| (\d+) \| (.*) \|$", section, re.M)]
    assert len(rows) >= 3
    kuberay_cpus = 31  # the cpu-workers' request in cluster/kuberay/*.yaml (test_cluster_configs checks the fit)
    for n, rest in rows:
        n = int(n)
        node, workers, per_node_hour, per_hour, cost, per_thousand = [c.strip() for c in rest.split(" | ")]
        per_node = int(re.search(r"\((\d+)\)", node).group(1))
        assert per_node == (kuberay_cpus if "KubeRay" in node else 32)  # one island per vCPU of a c7i.8xlarge
        assert int(workers) == math.ceil(n / per_node)
        assert _num(per_node_hour) == per_node * rate
        assert _num(per_hour) == n * rate
        assert _num(cost) == pytest.approx(int(workers) * worker + head, abs=0.005)
        assert _num(per_thousand) == pytest.approx(_num(cost) / (_num(per_hour) / 1000), abs=0.0005)


def test_kuberay_islands_per_node_is_the_manifests_cpu_request():
    import yaml

    for name in ("raycluster.yaml", "rayjob-scan.yaml"):
        m = yaml.safe_load((ROOT / "cluster" / "kuberay" / name).read_text())
        spec = m["spec"] if m["kind"] == "RayCluster" else m["spec"]["rayClusterSpec"]
        (cpu,) = [g for g in spec["workerGroupSpecs"] if g["groupName"] == "cpu-workers"]
        assert cpu["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "31"
