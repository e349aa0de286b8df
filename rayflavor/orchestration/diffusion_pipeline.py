"""The whole diffusion chain: dataset -> pre-network -> teacher or fine-tuning rounds -> final sample(s).

Settings: :class:`rayflavor.methods.diffusion.settings.ChainSettings` (the defaults are the CLI's;
``PRESETS[ChainSettings]["paper"]`` the paper's chain). They are stored whole in ``RUN/run.json``
under ``"settings"``, so ``rayflavor diffusion run RUN2 --config RUN/run.json`` repeats a run.
Every step resumes: the dataset's finished shards, the pre-network's checkpoints, the finished
rounds and sample shards are kept.
"""

from __future__ import annotations

import time
from dataclasses import replace

from rayflavor import __version__, configfile
from rayflavor.methods.diffusion import training
from rayflavor.methods.diffusion.settings import LEGACY_TEACHERS, ChainSettings
from rayflavor.orchestration.diffusion_dataset import make_dataset
from rayflavor.orchestration.diffusion_rounds import SESSION_MAX_STEPS, finetune
from rayflavor.orchestration.diffusion_sample import best_network, sample_run
from rayflavor.orchestration.diffusion_teacher import teach
from rayflavor.orchestration.diffusion_train import train_network
from rayflavor.storage import runs

RUN_FORMAT = "rayflavor-diffusion-run/1"


def write_run_manifest(run: runs.Where, settings: ChainSettings) -> None:
    """``RUN/run.json``: the chain's settings, whole (a valid ``--config`` file)."""
    runs.write_json({"format": RUN_FORMAT, "command": "rayflavor diffusion run", "version": __version__,
                     "settings": configfile.to_mapping(settings)}, runs.run_manifest_path(run))


def run_differences(run: runs.Where, settings: ChainSettings) -> list[str]:
    """The settings (dotted paths) in which ``settings`` differ from those stored in ``RUN/run.json``;
    empty when there is none yet or they are the same (a rerun continues the chain)."""
    path = runs.run_manifest_path(run)
    if not path.is_file():
        return []
    stored = runs.read_json(path).get("settings", {})
    if stored.get("teacher") in LEGACY_TEACHERS:  # a run of an earlier release: the same teacher, renamed
        stored = {**stored, "teacher": LEGACY_TEACHERS[stored["teacher"]]}

    def flat(d: dict, pre: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{pre}{k}.") if isinstance(v, dict) else {f"{pre}{k}": v})
        return out

    a, b = flat(stored), flat(configfile.to_mapping(settings))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _keeps_labels(run: runs.Where, network: str | None) -> bool:
    """Whether network ``network`` (None: the newest) keeps solution labels (``--labels solutions``)."""
    path = runs.network_path(run, runs.require_network(run, network))
    return training.solution_labels(training.load_model(path)[2]) is not None


def run_chain(run: runs.Where, settings: ChainSettings = ChainSettings(), *, gpu: str = "auto",
              session_max_steps: int = SESSION_MAX_STEPS, log=print) -> dict:
    """dataset -> pre-network -> the teacher and the taught network (``teacher`` importance or nested) or
    ``settings.rounds`` self-training rounds -> final sample; returns the final summary.

    The final sample is drawn from ``settings.final_network`` (``best``: the network whose earlier
    samples -- each round samples the previous network -- had the highest solution fraction; the
    final sample is fresh, with its own seed, so its fraction is an unbiased measure of the chosen
    network; ``last``: the newest). With ``final_physics`` or ``final_project`` > 0 a second final
    sample of the same network and size with that many physics-guidance and projection steps and
    ``final_orbits`` orbit-resampling sweeps (its own seed) follows; the returned summary is then
    that one's, with the network-only final sample's under ``"unguided"``.
    """
    st = settings
    t0 = time.perf_counter()
    write_run_manifest(run, st)
    make_dataset(run, n=st.n_data, seed=st.seed, log=log)
    train_network(run, "pre", workers=st.workers, steps=st.train_steps, gpu=gpu, every=st.tune.every, seed=st.seed,
                  refit="none", coordinates=st.coordinates, recovery=st.recovery, log=log)
    network = None
    if st.teacher != "none":
        network = teach(run, st, gpu=gpu, log=log)  # no rounds (ChainSettings refuses them), no choice to make
    done = sum(1 for n in runs.networks(run) if n.startswith("tuned-"))
    if st.rounds > done:
        finetune(run, st.finetune(st.rounds - done), gpu=gpu, session_max_steps=session_max_steps, log=log)
    if network is None and st.final_network == "best":
        network, frac, n = best_network(run)
        if network is not None:
            log(f"final sample from {network!r}: the highest solution fraction of the networks' samples so far "
                f"({frac:.3g} in {n})")
    labels = st.final_labels
    if labels == "solutions" and not _keeps_labels(run, network):
        log(f"final samples: network {runs.require_network(run, network)!r} keeps no solution labels (it was not "
            "fine-tuned on solutions); they are conditioned on the central values")
        labels = "central"
    s = sample_run(run, replace(st.final_sampling(0, 0, 0), labels=labels), network=network, seed=st.seed + 1,
                   keep="all", log=log)
    if st.second_final:
        guided = replace(st.final_sampling(st.final_physics, st.final_project, st.final_orbits), labels=labels)
        s = {**sample_run(run, guided, network=network, seed=st.seed + 2, keep="all", log=log),
             "unguided": s}
    s["total_seconds"] = time.perf_counter() - t0
    return s
